"""Portal pages for account security: where you are logged in (end one session, or all others) and
the security activity list. The pages call the same services as `/v1/me/sessions` and
`/v1/me/security-activity`; every post carries the CSRF token."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from broker.accounts.activity import ActivityKind
from broker.accounts.models import CustomerSession
from broker.errors import NotFound, ValidationFailed
from broker.portal.guards import LoggedIn, PostedForm
from broker.portal.html import render
from broker.runtime import Runtime
from broker.web.deps import DbSession, RuntimeDep, clear_session_cookie

router = APIRouter(prefix="/portal", include_in_schema=False)

PAGE_SIZE = 50
Cursor = Annotated[str | None, Query(max_length=200)]

KIND_LABELS: dict[str, str] = {
    ActivityKind.SIGN_IN: "Signed in",
    ActivityKind.NEW_DEVICE: "Signed in from a new device",
    ActivityKind.SIGN_IN_LINK: "Signed in with an emailed link",
    ActivityKind.SESSION_REVOKED: "Logged out remotely",
    ActivityKind.PASSWORD_CHANGED: "Password changed",
    ActivityKind.RESET_REQUESTED: "Password reset requested",
    ActivityKind.PASSWORD_RESET: "Password reset",
    ActivityKind.EMAIL_CHANGED: "Email address changed",
    ActivityKind.FACTOR_ADDED: "Sign-in method added",
    ActivityKind.FACTOR_REMOVED: "Sign-in method removed",
}


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


def sessions_context(db: Session, runtime: Runtime, current: CustomerSession) -> dict[str, Any]:
    """The rows of the sessions page: every active session, the current one first."""
    found = runtime.customer_sessions.listing(db, current.customer_id, cursor=None, limit=200)
    rows = [
        {
            "id": row.id,
            "device": row.device,
            "created": _when(row.created_at),
            "last_seen": _when(row.last_seen_at),
            "current": row.id == current.id,
        }
        for row in found.items
    ]
    rows.sort(key=lambda row: not row["current"])
    return {"sessions": rows, "more": found.next_cursor is not None, "message": None, "notice": None}


@router.get("/sessions")
def sessions_page(
    request: Request,
    session: LoggedIn,
    db: DbSession,
    runtime: RuntimeDep,
    ended: Annotated[str | None, Query(max_length=6)] = None,
) -> Response:
    """Where you are logged in; after ending sessions, says how many ended."""
    context = sessions_context(db, runtime, session)
    if ended is not None and ended.isdigit():
        count = int(ended)
        context["notice"] = f"Logged out of {count} session{'s' if count != 1 else ''}."
    return render(request, "sessions.html", context, secure=runtime.settings.secure_cookies)


@router.post("/sessions/{session_id}/end")
def end_session(
    session_id: UUID, request: Request, session: PostedForm, db: DbSession, runtime: RuntimeDep
) -> Response:
    """End one session; ending this one logs out."""
    try:
        runtime.customer_sessions.revoke(db, session.customer_id, session_id)
    except NotFound:
        context = {**sessions_context(db, runtime, session), "message": "That session had already ended."}
        return render(request, "sessions.html", context, status=404, secure=runtime.settings.secure_cookies)
    if session_id == session.id:
        response = RedirectResponse("/portal/login", status_code=303)
        clear_session_cookie(response, runtime.settings)
        return response
    return RedirectResponse("/portal/sessions?ended=1", status_code=303)


@router.post("/sessions/end-others")
def end_other_sessions(session: PostedForm, db: DbSession, runtime: RuntimeDep) -> Response:
    """Log out everywhere else."""
    ended = runtime.customer_sessions.revoke_others(db, session.customer_id, keep=session.id)
    return RedirectResponse(f"/portal/sessions?ended={ended}", status_code=303)


@router.get("/security-activity")
def activity_page(
    request: Request, session: LoggedIn, db: DbSession, runtime: RuntimeDep, cursor: Cursor = None
) -> Response:
    """Your security activity, newest first, a page at a time."""
    secure = runtime.settings.secure_cookies
    try:
        found = runtime.activity.listing(db, session.customer_id, cursor=cursor, limit=PAGE_SIZE)
    except ValidationFailed:
        broken = {"title": "That link is broken", "message": "Open your security activity again."}
        return render(request, "error.html", broken, status=400, secure=secure)
    events = [
        {
            "when": _when(event.created_at),
            "what": KIND_LABELS.get(event.kind, event.kind),
            "device": event.device or "",
            "detail": event.detail or "",
        }
        for event in found.items
    ]
    context: dict[str, object] = {
        "events": events,
        "next_cursor": found.next_cursor,
        "retention_days": runtime.settings.security_activity_retention_days,
    }
    return render(request, "security_activity.html", context, secure=secure)
