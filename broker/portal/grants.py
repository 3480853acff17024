"""Portal pages about grants: the dashboard, a grant's page, and what is done from it (end it, share
fewer fields, share for less time, renew, confirm or dispute its value, reject the brand's answer,
put the dispute before an auditor or decline the brand's request to).

A refused change is shown on the grant's page, with what was typed kept; the rules are the domain's
(`broker.consent.grants.Grants.narrow` and friends), the words the page's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from broker.accounts.models import CustomerSession
from broker.accounts.service import LiveSession
from broker.audit.entries import Actor
from broker.consent.purposes import PURPOSES
from broker.errors import BrokerError, NotFound, ValidationFailed
from broker.portal import views
from broker.portal.guards import LoggedIn, LoginRequired, PostedForm
from broker.portal.html import render
from broker.usecases.custody import SealIn
from broker.voice.contacts import BREACH_WORDS, Breach
from broker.voice.feedback import MAX_WORDS, Occasion, RatingIn
from broker.voice.preferences import CHANNEL_LABELS, ContactChannel
from broker.web.customer_reads import portal_read
from broker.web.deps import DbSession, RuntimeDep

router = APIRouter(prefix="/portal", include_in_schema=False)


@router.get("/")
async def home(
    request: Request, runtime: RuntimeDep, older: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    """The dashboard: the customer's grants across brands, newest first, a page at a time (`older`:
    the cursor of the next page), each with its value and last access; and value totals."""

    def dashboard(db: Session, current: LiveSession) -> Response:
        secure = runtime.settings.secure_cookies
        try:
            context = views.overview(db, runtime, current.customer_id, older=older)
        except ValidationFailed:
            context = {"title": "That link is broken", "message": "Open your data again from the start."}
            return render(request, "error.html", context, status=400, secure=secure)
        return render(request, "home.html", context, secure=secure)

    page = await portal_read(request, runtime, dashboard)
    if page is None:
        raise LoginRequired(request.url.path)
    return page


@router.get("/grants/{grant_id}")
def grant_page(
    grant_id: UUID,
    request: Request,
    session: LoggedIn,
    db: DbSession,
    runtime: RuntimeDep,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One grant: what is shared, its terms, its timeline with proof badges, its value, actions."""
    return _grant(request, db, runtime, session, grant_id, before=before)


def _grant(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    session: CustomerSession,
    grant_id: UUID,
    *,
    message: str | None = None,
    status: int = 200,
    before: str | None = None,
    until: str | None = None,
) -> Response:
    secure = runtime.settings.secure_cookies
    try:
        context = views.grant_detail(db, runtime, session.customer_id, grant_id, before=before)
    except NotFound:
        context = {
            "title": "No such grant",
            "message": "It may have been another account's. Go back to your data.",
        }
        return render(request, "error.html", context, status=404, secure=secure)
    except ValidationFailed:
        context = {"title": "That link is broken", "message": "Open the grant again from your data."}
        return render(request, "error.html", context, status=400, secure=secure)
    now, window = runtime.clock(), timedelta(days=runtime.settings.dispute_answer_days)
    opens = {o.id: o.dispute.disputed_at + window for o in context["obligations"] if o.dispute}
    contacts = runtime.contacts.for_grant(db, grant_id)
    grant = runtime.grants.for_customer(db, session.customer_id, grant_id)
    context.update(
        rate=[
            {
                "value": "end" if obligation is None else f"delivery:{obligation}",
                "label": "the end of this grant" if obligation is None else "a delivery you confirmed",
            }
            for _, obligation in runtime.feedback.due(db, grant)
        ],
        rated=[
            {"rating": r.rating, "on": r.created_on.isoformat()}
            for r in runtime.feedback.of_grant(db, grant_id)
        ],
        contacts=[
            {
                "at": f"{c.contacted_at:%Y-%m-%d %H:%M} UTC",
                "channel": CHANNEL_LABELS.get(ContactChannel(c.channel), c.channel),
                "purpose": PURPOSES[c.purpose].label if c.purpose in PURPOSES else c.purpose,
                "broke": [BREACH_WORDS[Breach(code)] for code in c.breaches],
            }
            for c in contacts
        ],
        message=message,
        until=until,
        held=runtime.vault.is_held(db, session.customer_id),
        escalation_opens={k: f"{v:%Y-%m-%d %H:%M} UTC" for k, v in opens.items()},
        escalation_ready={k: v <= now for k, v in opens.items()},
    )
    return render(request, "grant.html", context, status=status, secure=secure)


def _change_grant(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    session: CustomerSession,
    grant_id: UUID,
    change: Callable[[], object],
    *,
    until: str | None = None,
) -> Response:
    """Make one change to a grant, then show the grant again; a refusal is shown on its page."""
    try:
        change()
    except BrokerError as exc:
        return _grant(
            request, db, runtime, session, grant_id, message=exc.detail, status=exc.status, until=until
        )
    return RedirectResponse(f"/portal/grants/{grant_id}", status_code=303)


@router.post("/grants/{grant_id}/revoke")
def revoke_grant(
    grant_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """End a grant, once the customer ticked that they understand."""
    if confirm != "yes":
        message = "Tick the box to confirm you want to stop sharing."
        return _grant(request, db, runtime, session, grant_id, message=message, status=422)
    customer_id = session.customer_id
    return _change_grant(
        request, db, runtime, session, grant_id,
        lambda: runtime.grants.revoke(
            db, runtime.grants.for_customer(db, customer_id, grant_id), by=Actor.CUSTOMER
        ),
    )  # fmt: skip


@router.post("/grants/{grant_id}/feedback")
def rate_brand(
    grant_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    occasion: Annotated[str, Form(max_length=64)] = "",
    rating: Annotated[str, Form(max_length=1)] = "",
    words: Annotated[str, Form(max_length=MAX_WORDS)] = "",
    share: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """Rate the grant's brand for one occasion (its end, or a confirmed delivery)."""
    kind, _, obligation = occasion.partition(":")
    try:
        wanted = RatingIn.model_validate(
            {
                "occasion": Occasion.GRANT_END if kind == "end" else Occasion.DELIVERY,
                "obligation_id": obligation or None,
                "rating": int(rating) if rating in {"1", "2", "3", "4", "5"} else 0,
                "text": words or None,
                "share_text_with_brand": share == "yes",
            }
        )
    except ValidationError:
        message = "Choose a rating from 1 to 5 for one of the occasions shown."
        return _grant(request, db, runtime, session, grant_id, message=message, status=422)
    customer_id = session.customer_id
    return _change_grant(
        request, db, runtime, session, grant_id,
        lambda: runtime.feedback.rate(db, runtime.grants.for_customer(db, customer_id, grant_id), wanted),
    )  # fmt: skip


@router.post("/grants/{grant_id}/narrow")
def narrow_grant(
    grant_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    fields: Annotated[list[str] | None, Form(max_length=40)] = None,
    sealed: Annotated[str, Form(max_length=60_000)] = "",
) -> Response:
    """Stop sharing the fields left unticked (required ones stay; to stop those, end the grant). In
    self-custody the browser seals the kept fields to the brand (`sealed`, by `static/held.js`)."""
    customer_id = session.customer_id
    seal = None
    if sealed:
        try:
            seal = SealIn.model_validate_json(sealed).seal()  # the API's own shape
        except ValidationError:
            return _grant(request, db, runtime, session, grant_id, message=_UNSEALED, status=422)

    def narrow() -> object:
        try:
            return runtime.custody.narrow(
                db, customer_id, grant_id, fields=fields or [], expires_at=None, seal=seal
            )
        except ValidationFailed as refused:
            if any(e.get("pointer", "").startswith("/sealed") for e in refused.extensions.get("errors", [])):
                raise ValidationFailed(_UNSEALED) from None
            raise

    return _change_grant(request, db, runtime, session, grant_id, narrow)


_UNSEALED = (
    "Your profile is in your custody: unlock it with your passkey so that your browser seals the fields "
    "you keep sharing, then try again."
)


@router.post("/grants/{grant_id}/shorten")
def shorten_grant(
    grant_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    until: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Bring the end of sharing forward to the end of the chosen day (UTC); never later than it was."""
    try:
        last_day = date.fromisoformat(until.strip())
    except ValueError:
        message = "Pick the last day of sharing as a date, like 2026-12-31."
        return _grant(request, db, runtime, session, grant_id, message=message, status=422, until=until)
    customer_id = session.customer_id

    def shorten() -> None:
        grant = runtime.grants.for_customer(db, customer_id, grant_id)
        ends_at = grant.expires_at
        end_of_day = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=UTC)
        try:  # the rule is `Grants.narrow`'s, as for PATCH /v1/me/grants/{id}; the words are the page's
            runtime.grants.narrow_for_customer(db, customer_id, grant_id, fields=None, expires_at=end_of_day)
        except ValidationFailed:
            if last_day < runtime.clock().date():
                raise ValidationFailed(
                    "The last day of sharing cannot be in the past; pick today or later."
                ) from None
            raise ValidationFailed(
                f"Sharing already ends on {ends_at:%Y-%m-%d at %H:%M} UTC; pick an earlier day "
                "to shorten it (to share for longer, renew)."
            ) from None

    return _change_grant(request, db, runtime, session, grant_id, shorten, until=until)


@router.post("/grants/{grant_id}/renew")
def renew_grant(
    grant_id: UUID, request: Request, session: PostedForm, db: DbSession, runtime: RuntimeDep
) -> Response:
    """Keep sharing on the same terms for the offer's duration from today (and reconfirm)."""
    customer_id = session.customer_id
    return _change_grant(
        request, db, runtime, session, grant_id, lambda: runtime.renewals.renew(db, customer_id, grant_id)
    )


@router.post("/value/{obligation_id}/confirm")
def confirm_value(
    obligation_id: UUID, request: Request, session: PostedForm, db: DbSession, runtime: RuntimeDep
) -> Response:
    """The customer received the value."""
    return _on_value(request, db, runtime, session, obligation_id, runtime.value.confirm)


@router.post("/value/{obligation_id}/dispute")
def dispute_value(
    obligation_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The customer disputes a delivery, saying why."""
    if not reason.strip():
        return _value_refused(request, db, runtime, session, obligation_id, _SAY_WHY)
    dispute = partial(runtime.value.dispute, reason=reason.strip())
    return _on_value(request, db, runtime, session, obligation_id, dispute)


@router.post("/value/{obligation_id}/answer-rejection")
def reject_answer(
    obligation_id: UUID, request: Request, session: PostedForm, db: DbSession, runtime: RuntimeDep
) -> Response:
    """The brand's answer does not settle the dispute: either side may now ask an auditor."""
    return _on_value(request, db, runtime, session, obligation_id, runtime.value.reject_answer)


@router.post("/value/{obligation_id}/escalation")
def escalate(
    obligation_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    share: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Ask an auditor to decide (or agree to the brand's request), showing them the dispute file."""
    if share != "yes":
        return _value_refused(request, db, runtime, session, obligation_id, _AGREE_TO_SHARE)
    return _on_value(request, db, runtime, session, obligation_id, runtime.disputes.escalate_as_customer)


@router.post("/value/{obligation_id}/escalation/decline")
def decline_escalation(
    obligation_id: UUID, request: Request, session: PostedForm, db: DbSession, runtime: RuntimeDep
) -> Response:
    """Keep the dispute file from the auditors: the brand's request ends."""
    return _on_value(request, db, runtime, session, obligation_id, runtime.disputes.decline)


_SAY_WHY = "Say what is wrong with the delivery, so the brand can answer."
_AGREE_TO_SHARE = "Tick the box to show the auditors the dispute file: an auditor cannot decide without it."


def _on_value(
    request: Request,
    db: Session,
    runtime: RuntimeDep,
    session: CustomerSession,
    obligation_id: UUID,
    change: Callable[[Session, UUID, UUID], object],
) -> Response:
    """Make one change, `change(db, customer_id, obligation_id)`, to one of the customer's
    obligations, then show its grant again; a refusal is shown on the grant's page (someone else's
    obligation is a 404 before anything happens)."""
    obligation = runtime.value.for_customer(db, session.customer_id, obligation_id)
    try:
        change(db, session.customer_id, obligation_id)
    except BrokerError as exc:
        return _grant(request, db, runtime, session, obligation.grant_id, message=str(exc), status=exc.status)
    return RedirectResponse(f"/portal/grants/{obligation.grant_id}", status_code=303)


def _value_refused(
    request: Request,
    db: Session,
    runtime: RuntimeDep,
    session: CustomerSession,
    obligation_id: UUID,
    message: str,
) -> Response:
    obligation = runtime.value.for_customer(db, session.customer_id, obligation_id)
    return _grant(request, db, runtime, session, obligation.grant_id, message=message, status=422)
