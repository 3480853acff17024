"""The portal's profile editor: every field of the vault's catalogue, filled with what is stored."""

from __future__ import annotations

import json
from typing import Annotated

import pycountry
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from broker.errors import ValidationFailed
from broker.portal.guards import CheckedForm, PortalCustomer
from broker.portal.html import render
from broker.portal.profile_form import CHOICES, ProfileForm, form_context
from broker.web.deps import DbSession, RuntimeDep
from vault.errors import ProfileInvalid
from vault.fields import LIFE_STAGES, MAX_INTERESTS

router = APIRouter(prefix="/portal", include_in_schema=False)


def _held_rules() -> str:
    """What the browser checks a held profile's values against (the vault's rules, as data)."""
    return json.dumps(
        {
            "countries": sorted(country.alpha_2 for country in pycountry.countries),
            "life_stages": list(LIFE_STAGES),
            "choices": {name: list(options) for name, options in CHOICES.items()},
            "max_interests": MAX_INTERESTS,
        },
        separators=(",", ":"),
    )


def _held_page(
    request: Request, db: DbSession, runtime: RuntimeDep, customer: PortalCustomer, status: int = 200
) -> Response:
    """The editor of a profile in self-custody: empty until the browser opens it (`static/held.js`),
    the email alone filled in (it stays in Consentry's custody)."""
    email = runtime.vault.read(db, customer.id, ["email"], omit_held=True)
    message = (
        "Your profile is in self-custody: your browser saves it, which needs JavaScript."
        if status != 200
        else None
    )
    context = {
        **form_context(email, {}),
        "message": message,
        "errors": {},
        "held": True,
        "rules": _held_rules(),
    }
    return render(request, "profile.html", context, status=status, secure=runtime.settings.secure_cookies)


@router.get("/profile")
def profile_page(request: Request, customer: PortalCustomer, db: DbSession, runtime: RuntimeDep) -> Response:
    """The profile editor, filled with what is stored (in self-custody, by the browser)."""
    if runtime.vault.is_held(db, customer.id):
        return _held_page(request, db, runtime, customer)
    stored = runtime.profiles.read(db, customer)["fields"]
    context = {**form_context(stored, {}), "message": None}
    return render(request, "profile.html", context, secure=runtime.settings.secure_cookies)


@router.post("/profile")
def save_profile(
    request: Request,
    customer: PortalCustomer,
    _: CheckedForm,
    db: DbSession,
    runtime: RuntimeDep,
    form: Annotated[ProfileForm, Form()],
) -> Response:
    """Save the whole profile; on a mistake, say which field and keep everything typed."""
    if runtime.vault.is_held(db, customer.id):  # the script saves it (PUT /v1/me/custody/fields)
        return _held_page(request, db, runtime, customer, status=409)
    values = form.values()
    try:
        runtime.profiles.replace(db, customer, values)
    except (ProfileInvalid, ValidationFailed) as exc:
        problems = (
            {e.field: e.message for e in exc.errors}
            if isinstance(exc, ProfileInvalid)
            else {p["pointer"].strip("/"): p["detail"] for p in exc.extensions.get("errors", [])}
        )
        typed = {**values, **{n: getattr(form, n) for n in ("phone", "household_size", "birthdate")}}
        context = {**form_context(typed, problems), "message": "Please fix what is marked below."}
        return render(request, "profile.html", context, status=422, secure=runtime.settings.secure_cookies)
    context = {**form_context(runtime.profiles.read(db, customer)["fields"], {}), "message": "Saved."}
    return render(request, "profile.html", context, secure=runtime.settings.secure_cookies)
