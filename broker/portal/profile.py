"""The portal's profile editor: every field of the vault's catalogue, filled with what is stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from broker.errors import ValidationFailed
from broker.portal.guards import CheckedForm, PortalCustomer
from broker.portal.html import render
from broker.portal.profile_form import ProfileForm, form_context
from broker.web.deps import DbSession, RuntimeDep
from vault.errors import ProfileInvalid

router = APIRouter(prefix="/portal", include_in_schema=False)


@router.get("/profile")
def profile_page(request: Request, customer: PortalCustomer, db: DbSession, runtime: RuntimeDep) -> Response:
    """The profile editor, filled with what is stored."""
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
