"""Accounts: sign up, log in, log out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from broker.api.deps import CurrentSession, DbSession, RuntimeDep, clear_session_cookie, set_session_cookie
from broker.api.schemas import Credentials, CustomerPublic, SessionPublic, SignUp

router = APIRouter(prefix="/v1", tags=["accounts"])

_PROBLEMS: dict[int | str, dict[str, str]] = {
    400: {"description": "The body is not JSON"},
    413: {"description": "The body is over 64 KiB"},
    422: {"description": "Invalid input; `errors` points at each problem"},
}


@router.post(
    "/customers",
    status_code=status.HTTP_201_CREATED,
    operation_id="createCustomer",
    responses={**_PROBLEMS, 409: {"description": "An account with this email exists"}},
)
def create_customer(body: SignUp, db: DbSession, runtime: RuntimeDep, response: Response) -> CustomerPublic:
    """Sign up with an email and a password (at least 12 characters, not a common one)."""
    customer = runtime.accounts.sign_up(db, body.email, body.password)
    response.headers["Location"] = "/v1/me/profile"
    return CustomerPublic(id=customer.id, created_at=customer.created_at)


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    operation_id="createSession",
    responses={
        **_PROBLEMS,
        401: {"description": "Wrong email or password"},
        429: {"description": "Too many failed attempts; see Retry-After"},
    },
)
def create_session(
    body: Credentials, request: Request, response: Response, db: DbSession, runtime: RuntimeDep
) -> SessionPublic:
    """Log in: returns a bearer token and sets the portal's session cookie."""
    address = request.client.host if request.client else "unknown"
    issued = runtime.accounts.log_in(
        db, body.email, body.password, address=address, user_agent=request.headers.get("user-agent")
    )
    set_session_cookie(response, issued.token, runtime.settings)
    return SessionPublic(token=issued.token, expires_at=issued.session.expires_at)


@router.delete(
    "/sessions/current",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteCurrentSession",
    responses={401: {"description": "Not logged in"}, 403: {"description": "Cross-site request refused"}},
)
def delete_current_session(current: CurrentSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """Log out: the session ends server-side and its token stops working at once."""
    runtime.accounts.log_out(db, current)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, runtime.settings)
    return response
