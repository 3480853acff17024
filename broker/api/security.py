"""The customer's account security: active sessions (list, end one, end all others), the security
activity list, and changing the password. Routes parse, call one service, return a Public shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from broker.api.contract import FRESH_SESSION_PROBLEMS, problems
from broker.api.security_schemas import (
    ActiveSessionPage,
    ActiveSessionPublic,
    PasswordChange,
    SecurityActivityPage,
    SecurityEventPublic,
    SessionsEnded,
)
from broker.errors import (
    CrossSiteRefused,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    RequestTooLarge,
    TooManyAttempts,
    ValidationFailed,
    WrongPassword,
)
from broker.web.deps import CurrentSession, DbSession, FreshSession, RuntimeDep, clear_session_cookie

router = APIRouter(prefix="/v1/me", tags=["security"])

_READ: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated),
}
_AUTH: dict[int | str, dict[str, Any]] = {
    **_READ,
    403: problems("Cross-site request refused", CrossSiteRefused),
}
_PAGE: dict[int | str, dict[str, Any]] = {**_READ, 422: problems("Bad limit or cursor", ValidationFailed)}
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


@router.get("/sessions", operation_id="listMySessions", responses=_PAGE)
def list_sessions(
    current: CurrentSession, db: DbSession, runtime: RuntimeDep, limit: Limit = 50, cursor: Cursor = None
) -> ActiveSessionPage:
    """Every active session of your account, newest first, with its device and when it was last used;
    `current` marks the one this request came with."""
    found = runtime.customer_sessions.listing(db, current.customer_id, cursor=cursor, limit=limit)
    idle = runtime.customer_sessions.idle_timeout
    items = [ActiveSessionPublic.of(row, current_id=current.id, idle=idle) for row in found.items]
    return ActiveSessionPage(items=items, next_cursor=found.next_cursor)


@router.delete(
    "/sessions",
    operation_id="endMyOtherSessions",
    responses={**_AUTH, 422: problems("`scope` is missing or not `others`", ValidationFailed)},
)
def end_other_sessions(
    current: CurrentSession,
    db: DbSession,
    runtime: RuntimeDep,
    scope: Annotated[Literal["others"], Query(description="`others`: every session but this one (required)")],
) -> SessionsEnded:
    """Log out everywhere else: every other session ends at once; this one stays."""
    ended = runtime.customer_sessions.revoke_others(db, current.customer_id, keep=current.id)
    return SessionsEnded(ended=ended)


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="endMySession",
    responses={**_AUTH, 404: problems("No active session with this id on your account", NotFound)},
)
def end_session(session_id: UUID, current: CurrentSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """End one session: its token stops working at once. Ending the current one logs you out."""
    runtime.customer_sessions.revoke(db, current.customer_id, session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if session_id == current.id:
        clear_session_cookie(response, runtime.settings)
    return response


@router.get("/security-activity", operation_id="listMySecurityActivity", responses=_PAGE)
def security_activity(
    current: CurrentSession, db: DbSession, runtime: RuntimeDep, limit: Limit = 50, cursor: Cursor = None
) -> SecurityActivityPage:
    """Sign-ins (and from which kind of device), sessions ended, password and email changes, resets,
    factors added or removed: newest first, kept for CONSENTRY_SECURITY_ACTIVITY_RETENTION_DAYS."""
    found = runtime.activity.listing(db, current.customer_id, cursor=cursor, limit=limit)
    return SecurityActivityPage(
        items=[SecurityEventPublic.of(event) for event in found.items], next_cursor=found.next_cursor
    )


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="changeMyPassword",
    responses={
        **FRESH_SESSION_PROBLEMS,
        400: problems("The body is not JSON", MalformedRequest),
        413: problems("The body is over 64 KiB", RequestTooLarge),
        422: problems(
            "The current password is wrong (`wrong-password`, counted), or the new one "
            "is too weak; `errors` points at the field",
            WrongPassword,
            ValidationFailed,
        ),
        429: problems("Too many wrong current passwords; see Retry-After", TooManyAttempts),
    },
)
def change_password(
    body: PasswordChange, current: FreshSession, db: DbSession, runtime: RuntimeDep
) -> Response:
    """Change the password: the current one is required, the new one follows the sign-up rules. Every
    other session ends; this one stays."""
    runtime.password_changes.change(
        db, current, current_password=body.current_password, new_password=body.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
