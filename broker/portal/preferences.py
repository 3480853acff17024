"""The portal's preferences page: how, when and how often brands may contact you, what never about,
and whether they may sell or share your data (`broker.voice.preferences`), each in plain words."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from broker.portal.guards import CheckedForm, PortalCustomer
from broker.portal.html import render
from broker.voice.preferences import (
    AVOIDABLE_TOPICS,
    CHANNEL_LABELS,
    PreferencesIn,
    PreferencesPublic,
)
from broker.web.deps import DbSession, RuntimeDep

router = APIRouter(prefix="/portal", include_in_schema=False)

# What each of the form's inputs is called in a validation error's location.
_INPUTS = {"channels": "channels", "avoid_topics": "avoid_topics", "max_contacts_per_month": "cap",
           "quiet_hours": "quiet", "do_not_sell_or_share": "do_not_sell"}  # fmt: skip


@router.get("/preferences")
def preferences_page(
    request: Request, customer: PortalCustomer, db: DbSession, runtime: RuntimeDep
) -> Response:
    """The preferences, as they stand, in a form."""
    context = _context(_typed(runtime.preferences.of(db, customer.id)), {}, None)
    return render(request, "preferences.html", context, secure=runtime.settings.secure_cookies)


@router.post("/preferences")
def save_preferences(
    request: Request,
    customer: PortalCustomer,
    _: CheckedForm,
    db: DbSession,
    runtime: RuntimeDep,
    channels: Annotated[list[str], Form(max_length=len(CHANNEL_LABELS))] = [],  # noqa: B006
    avoid_topics: Annotated[list[str], Form(max_length=len(AVOIDABLE_TOPICS))] = [],  # noqa: B006
    cap: Annotated[str, Form(max_length=8)] = "",
    quiet: Annotated[str, Form(max_length=3)] = "",
    quiet_start: Annotated[str, Form(max_length=8)] = "",
    quiet_end: Annotated[str, Form(max_length=8)] = "",
    time_zone: Annotated[str, Form(max_length=64)] = "",
    do_not_sell: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """Save the whole record; on a mistake, say which part and keep everything typed."""
    typed = {"channels": channels, "avoid_topics": avoid_topics, "cap": cap, "quiet": quiet == "yes",
             "quiet_start": quiet_start, "quiet_end": quiet_end, "time_zone": time_zone,
             "do_not_sell": do_not_sell == "yes"}  # fmt: skip
    errors: dict[str, str] = {}
    whole = re.fullmatch(r"[0-9]{1,3}", cap.strip())
    if cap.strip() and whole is None:
        errors["cap"] = "A whole number from 0 to 100, or leave it empty for no limit."
    try:
        wanted = PreferencesIn.model_validate(
            {
                "channels": channels,
                "avoid_topics": avoid_topics,
                "max_contacts_per_month": int(whole.group()) if whole else None,
                "quiet_hours": (
                    {"start": quiet_start, "end": quiet_end, "time_zone": time_zone.strip()}
                    if quiet == "yes"
                    else None
                ),
                "do_not_sell_or_share": do_not_sell == "yes",
            }
        )
    except ValidationError as exc:
        for error in exc.errors():
            name = _INPUTS.get(str(error["loc"][0]), "form") if error["loc"] else "form"
            errors.setdefault(name, _plain(name, error))
        wanted = None
    secure = runtime.settings.secure_cookies
    if errors or wanted is None:
        context = _context(typed, errors, "Please fix what is marked below.")
        return render(request, "preferences.html", context, status=422, secure=secure)
    saved = runtime.preferences.set(db, customer.id, wanted)
    context = _context(_typed(saved), {}, "Saved. Brands you share with are told to read them again.")
    return render(request, "preferences.html", context, secure=secure)


def _plain(name: str, error: Any) -> str:
    if name == "quiet":
        return (
            "Give quiet hours as a start and an end time that differ (e.g. 21:00 and 08:00) and a time "
            "zone such as Europe/London."
        )
    if name == "cap":
        return "A whole number from 0 to 100, or leave it empty for no limit."
    return "Choose only among the options shown."


def _typed(stored: PreferencesPublic) -> dict[str, Any]:
    quiet = stored.quiet_hours
    return {
        "channels": [c.value for c in stored.channels],
        "avoid_topics": [t.value for t in stored.avoid_topics],
        "cap": "" if stored.max_contacts_per_month is None else str(stored.max_contacts_per_month),
        "quiet": quiet is not None,
        "quiet_start": quiet.start if quiet else "21:00",
        "quiet_end": quiet.end if quiet else "08:00",
        "time_zone": quiet.time_zone if quiet else "Europe/London",
        "do_not_sell": stored.do_not_sell_or_share,
        "version": stored.version,
        "updated_at": stored.updated_at,
    }


def _context(typed: dict[str, Any], errors: dict[str, str], message: str | None) -> dict[str, Any]:
    return {
        "typed": typed,
        "errors": errors,
        "message": message,
        "channels": {c.value: label for c, label in CHANNEL_LABELS.items()},
        "topics": {t.value: label for t, label in AVOIDABLE_TOPICS.items()},
    }
