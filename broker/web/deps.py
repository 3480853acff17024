"""FastAPI dependencies as `Annotated` aliases: the unit of work, the current customer, brand or auditor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from sqlmodel import Session

from broker.accounts.models import Auditor, Customer, CustomerSession
from broker.audit.log import REQUEST_ID
from broker.errors import BrokerError, CrossSiteRefused, NotAuthenticated
from broker.oauth.bearer import BrandAccess, verify_access_token
from broker.runtime import Runtime
from broker.settings import Settings

SESSION_COOKIE = "consentry_session"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    """The portal's session cookie: HttpOnly, SameSite=Lax, Secure behind HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    """Tell the browser to forget the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies
    )


def client_address(request: Request) -> str:
    """The client's IP address, for throttling only (kept as a blind token, never in clear)."""
    return request.client.host if request.client else "unknown"


async def get_runtime(request: Request) -> Runtime:
    """The runtime the app was built with. (This and the other dependencies that only look at the
    request are `async`: FastAPI runs a plain function dependency in a worker thread, a hop that
    costs more than the function.)"""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@contextmanager
def writing(runtime: Runtime, request_id: str | None) -> Iterator[Session]:
    """One database transaction, committed when the block ends without an error.

    A domain error rolls back, except the few whose bookkeeping must survive the error they answer
    with (a failed login's throttle count): those have `keeps_changes`. Audit entries written in the
    transaction carry the request's id.
    """
    session = runtime.sessions()
    session.info[REQUEST_ID] = request_id
    try:
        yield session
        session.commit()
    except BrokerError as exc:
        session.commit() if exc.keeps_changes else session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def reading(runtime: Runtime) -> Iterator[Session]:
    """One read-only transaction (see `read_unit`)."""
    session = runtime.read_sessions()
    try:
        yield session
    finally:
        session.close()  # ends the transaction: nothing to commit


def unit_of_work(request: Request, runtime: RuntimeDep) -> Iterator[Session]:
    """One database transaction per request, committed before the response is sent (`writing`)."""
    with writing(runtime, request.state.request_id) as session:
        yield session


@contextmanager
def undone_if_refused(session: Session) -> Iterator[None]:
    """For a page that answers a domain error itself (with HTML, not a problem): undo what the refused
    call wrote, as `unit_of_work` does for the API, except the bookkeeping of errors that keep it."""
    savepoint = session.begin_nested()
    try:
        yield
    except BrokerError as exc:
        savepoint.commit() if exc.keeps_changes else savepoint.rollback()
        raise
    savepoint.commit()


# scope="function": the commit runs when the endpoint returns, before the response goes out, so a
# failed commit is an error response, never a 200 for data that was not written.
DbSession = Annotated[Session, Depends(unit_of_work, scope="function")]


def read_unit(runtime: RuntimeDep) -> Iterator[Session]:
    """One read-only transaction per request, for a route that never writes (`ReadSession`): it takes
    no lock a writer needs (a deferred transaction on SQLite, beside the writer in WAL; READ ONLY, no
    row locks, on PostgreSQL), and any write through it fails (`broker.db.read_session_factory`).

    Declare it only where nothing the request does writes, its dependencies included: a customer's
    session notes when it was last seen, so customer routes keep `DbSession` (or read through
    `broker.web.customer_reads`, which writes that apart)."""
    with reading(runtime) as session:
        yield session


ReadSession = Annotated[Session, Depends(read_unit, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def _same_origin(request: Request, runtime: Runtime) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site", "same-origin") in {"same-origin", "none"}
    base = urlsplit(str(runtime.settings.base_url))
    given = urlsplit(origin)
    return (given.scheme, given.netloc) == (base.scheme, base.netloc)


def session_token(request: Request, runtime: Runtime) -> str:
    """The customer session token of the bearer header or the session cookie.

    Cookie-authenticated requests that change state must come from our own origin (CSRF defence for
    the JSON API; the portal's forms carry CSRF tokens as well).
    """
    token = _bearer(request)
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        if token is None:
            raise NotAuthenticated("log in first: send 'Authorization: Bearer <token>' or the session cookie")
        if request.method not in _SAFE_METHODS and not _same_origin(request, runtime):
            raise CrossSiteRefused("cross-site request refused; use the portal or a bearer token")
    return token


def current_session(request: Request, db: DbSession, runtime: RuntimeDep) -> CustomerSession:
    """The customer session behind the bearer token or the session cookie (see `session_token`)."""
    return runtime.accounts.authenticate(db, session_token(request, runtime))


CurrentSession = Annotated[CustomerSession, Depends(current_session)]


def fresh_session(current: CurrentSession, db: DbSession, runtime: RuntimeDep) -> CustomerSession:
    """The current session, if its customer proved who they are recently enough for a sensitive
    action (and with their second factor, when they have one); else 403 `reauthentication-required`,
    naming the endpoint that renews the proof. Add `_: FreshSession` to an endpoint to require it."""
    runtime.signin.require_fresh(db, current)
    return current


FreshSession = Annotated[CustomerSession, Depends(fresh_session)]


def current_customer(session: CurrentSession, db: DbSession) -> Customer:
    """The customer who owns the current session."""
    customer = db.get(Customer, session.customer_id)
    if customer is None:
        raise NotAuthenticated("this account no longer exists")
    return customer


CurrentCustomer = Annotated[Customer, Depends(current_customer)]


async def brand_token(request: Request) -> str:
    """The bearer access token, unverified (for a service that verifies it in its own transaction)."""
    token = _bearer(request)
    if token is None:
        raise NotAuthenticated("send the brand's access token as 'Authorization: Bearer <token>'")
    return token


BrandToken = Annotated[str, Depends(brand_token)]


def brand_access(token: BrandToken, db: DbSession, runtime: RuntimeDep) -> BrandAccess:
    """The brand behind a bearer access token (RFC 9068 JWT), verified and checked for revocation."""
    return verify_access_token(db, runtime.oauth, token)


BrandAccessDep = Annotated[BrandAccess, Depends(brand_access)]


def brand_read_access(token: BrandToken, db: ReadSession, runtime: RuntimeDep) -> BrandAccess:
    """`brand_access` in the request's read-only transaction, for routes that take `ReadSession`."""
    return verify_access_token(db, runtime.oauth, token)


BrandReadAccess = Annotated[BrandAccess, Depends(brand_read_access)]


def current_auditor(request: Request, db: DbSession, runtime: RuntimeDep) -> Auditor:
    """The auditor behind a bearer auditor token (no cookie: auditors are programs, not browsers)."""
    return _auditor(request, db, runtime)


def _auditor(request: Request, db: Session, runtime: Runtime) -> Auditor:
    token = _bearer(request)
    if token is None:
        raise NotAuthenticated("send an auditor token as 'Authorization: Bearer <token>'")
    return runtime.auditors.authenticate(db, token)


CurrentAuditor = Annotated[Auditor, Depends(current_auditor)]


def reading_auditor(request: Request, db: ReadSession, runtime: RuntimeDep) -> Auditor:
    """`current_auditor` in the request's read-only transaction, for routes that take `ReadSession`."""
    return _auditor(request, db, runtime)


ReadingAuditor = Annotated[Auditor, Depends(reading_auditor)]


async def request_id(request: Request) -> str:
    """The id of this request (echoed as X-Request-ID and recorded with every access)."""
    value: str = request.state.request_id
    return value


RequestId = Annotated[str, Depends(request_id)]
