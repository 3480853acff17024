"""Portal page to change the password: the current one, then the new one (the sign-up rules). Every
other session ends; the page says so. Like the API, it needs a fresh sign-in (step-up), asked inline."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from broker.errors import BrokerError
from broker.portal.guards import LoggedIn, Password, PostedForm
from broker.portal.html import render
from broker.portal.step_up import step_up_context
from broker.web.deps import DbSession, RuntimeDep, undone_if_refused

router = APIRouter(prefix="/portal", include_in_schema=False)


HERE = "/portal/password"


@router.get("/password")
def password_page(
    request: Request, session: LoggedIn, db: DbSession, runtime: RuntimeDep, reauth: str | None = None
) -> Response:
    """The change-password form (with the inline "confirm it is you" box when the sign-in is old)."""
    context: dict[str, object] = {
        "message": None,
        "notice": None,
        "errors": {},
        **step_up_context(db, runtime, session, HERE, reauth),
    }
    return render(request, "password.html", context, secure=runtime.settings.secure_cookies)


@router.post("/password")
def change_password(
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    current_password: Password = "",
    new_password: Password = "",
) -> Response:
    """Change the password; on a mistake, say which field."""
    secure = runtime.settings.secure_cookies
    step_up = step_up_context(db, runtime, session, HERE, "needed")
    if not step_up["fresh"]:
        stale = {"message": step_up["reauth_message"], "notice": None, "errors": {}, **step_up}
        return render(request, "password.html", stale, status=403, secure=secure)
    try:
        with undone_if_refused(db):
            ended = runtime.password_changes.change(
                db, session, current_password=current_password, new_password=new_password
            )
    except BrokerError as exc:
        problems = exc.extensions.get("errors") or []
        errors = {p["pointer"].strip("/"): p["detail"] for p in problems}
        refusal: dict[str, object] = {
            "message": "Please fix what is marked below." if errors else exc.detail,
            "notice": None,
            **step_up,
        }
        response = render(
            request, "password.html", {**refusal, "errors": errors}, status=exc.status, secure=secure
        )
        if retry_after := getattr(exc, "retry_after", None):
            response.headers["retry-after"] = str(retry_after)
        return response
    others = f" You were logged out of {ended} other session{'s' if ended != 1 else ''}." if ended else ""
    context: dict[str, object] = {
        "message": None,
        "notice": "Your password is changed." + others,
        "errors": {},
        **step_up,
    }
    return render(request, "password.html", context, secure=secure)
