"""The portal's intents: say what you are looking for, see which brands answered, compare their offers
and accept one in the directory (`broker.voice.intents`)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from broker.errors import BrokerError
from broker.portal.guards import CheckedForm, PortalCustomer
from broker.portal.html import render
from broker.voice.intents import KIND_LABELS, BudgetBand, Horizon, IntentIn, IntentKind
from broker.web.deps import DbSession, RuntimeDep

router = APIRouter(prefix="/portal/intents", include_in_schema=False)

HORIZONS = {
    Horizon.NOW: "Within a month",
    Horizon.SOON: "In 1 to 3 months",
    Horizon.LATER: "In 3 to 6 months",
    Horizon.THIS_YEAR: "In 6 to 12 months",
}
BUDGETS = {
    BudgetBand.UNDER_500: "Under 500",
    BudgetBand.UP_TO_2000: "500 to 2,000",
    BudgetBand.UP_TO_10000: "2,000 to 10,000",
    BudgetBand.OVER_10000: "Over 10,000",
}


def _page(request: Request, runtime: RuntimeDep, db: DbSession, customer_id: UUID, **extra: Any) -> Response:
    context = {
        "intents": [
            {
                "id": i.id,
                "kind": KIND_LABELS[IntentKind(i.kind)],
                "horizon": HORIZONS[Horizon(i.horizon)],
                "until": f"{i.expires_at:%Y-%m-%d}",
                "answers": len(runtime.intents.answers(db, i)),
            }
            for i in runtime.intents.mine(db, customer_id)
        ],
        "kinds": {k.value: label for k, label in KIND_LABELS.items()},
        "horizons": {h.value: label for h, label in HORIZONS.items()},
        "budgets": {b.value: label for b, label in BUDGETS.items()},
        "message": None,
        **extra,
    }
    status = 422 if extra.get("message") else 200
    return render(request, "intents.html", context, status=status, secure=runtime.settings.secure_cookies)


@router.get("")
def intents_page(request: Request, customer: PortalCustomer, db: DbSession, runtime: RuntimeDep) -> Response:
    """Your open intents, and a form to publish one."""
    return _page(request, runtime, db, customer.id)


@router.post("")
def publish(
    request: Request,
    customer: PortalCustomer,
    _: CheckedForm,
    db: DbSession,
    runtime: RuntimeDep,
    kind: Annotated[str, Form(max_length=32)] = "",
    horizon: Annotated[str, Form(max_length=32)] = "",
    budget: Annotated[str, Form(max_length=32)] = "",
    share_region: Annotated[str, Form(max_length=3)] = "",
    share_age_band: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """Publish an intent for 30 days."""
    try:
        wanted = IntentIn.model_validate(
            {"kind": kind, "horizon": horizon, "budget_band": budget or None,
             "share_region": share_region == "yes", "share_age_band": share_age_band == "yes"}
        )  # fmt: skip
        made = runtime.intents.publish(db, customer.id, wanted)
    except ValidationError:
        return _page(request, runtime, db, customer.id, message="Choose what you are looking for, and when.")
    except BrokerError as exc:
        return _page(request, runtime, db, customer.id, message=exc.detail)
    return RedirectResponse(f"/portal/intents/{made.id}", status_code=303)


@router.get("/{intent_id}")
def intent_page(
    intent_id: UUID, request: Request, customer: PortalCustomer, db: DbSession, runtime: RuntimeDep
) -> Response:
    """One intent and the offers brands answered it with: compare them, or open one to accept it."""
    secure = runtime.settings.secure_cookies
    try:
        intent = runtime.intents.one_of_mine(db, customer.id, intent_id)
    except BrokerError:
        missing = {"title": "No such intent", "message": "It may have expired. See your intents again."}
        return render(request, "error.html", missing, status=404, secure=secure)
    answers = runtime.directory.still_listed(db, customer.id, runtime.intents.answers(db, intent))
    context: dict[str, Any] = {
        "intent": {
            "id": intent.id,
            "kind": KIND_LABELS[IntentKind(intent.kind)],
            "horizon": HORIZONS[Horizon(intent.horizon)],
            "until": f"{intent.expires_at:%Y-%m-%d}",
            "region": intent.region,
            "age_band": intent.age_band,
        },
        "answers": answers,
        "compare": "&".join(f"offer={a.offer_id}" for a in answers[:4]),
    }
    return render(request, "intent.html", context, secure=secure)


@router.post("/{intent_id}/withdraw")
def withdraw(
    intent_id: UUID, customer: PortalCustomer, _: CheckedForm, db: DbSession, runtime: RuntimeDep
) -> Response:
    """Withdraw an intent (deleted with its answers)."""
    with contextlib.suppress(BrokerError):  # gone already: the list says so
        runtime.intents.withdraw(db, customer.id, intent_id)
    return RedirectResponse("/portal/intents", status_code=303)
