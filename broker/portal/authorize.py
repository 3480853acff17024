"""The OAuth authorization endpoint's pages: `GET /oauth/authorize` shows the consent screen (after
a login if needed), `POST /oauth/authorize` takes the customer's answer.

They answer in OAuth's own terms (error redirects carrying `iss`) when the request names a client
and redirect URI that can be trusted; otherwise an error page, never a redirect. The other OAuth
endpoints (token, revoke, introspect, metadata, JWKS) are the JSON API's: `broker.api.oauth`.

OpenID Connect's request parameters (Core §3.1.2.1):

- `prompt=login`, or a `max_age` the customer's last login is older than: log in again first. The
  way to the login page adds `login_after` (the time it was sent there, in microseconds) to the
  request, and a login after it satisfies both when the request comes back; a brand that sends
  `login_after` itself can only ask for a fresher login than it would get.
- `prompt=none`: no page at all. Without a login, or a login that is too old, `login_required`; with
  the customer's standing grant of the offer (`standing_grant`), a code for it; else
  `consent_required`.
- `prompt=consent` is what always happens; `login_hint` fills in the login form's email;
  `ui_locales` and `acr_values` are accepted and ignored (the portal speaks English, and every login
  is told as it happened, in the ID token's `acr` and `amr`).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from broker.accounts.models import Brand, Customer, CustomerSession
from broker.audit.group_commit import isolated
from broker.consent.models import Grant
from broker.errors import ValidationFailed
from broker.oauth.authorize import AuthorizationRefused, PendingAuthorization
from broker.oauth.oidc import Authentication
from broker.portal.consent_screen import FORM_ONLY, consent_context
from broker.portal.guards import PortalSession, login_redirect
from broker.portal.html import render
from broker.runtime import Runtime
from broker.usecases.consent_decision import ConsentScreen, Retry, decide, standing_grant
from broker.usecases.custody import Seal, SealIn
from broker.web.deps import DbSession, RuntimeDep
from broker.web.oauth_request import FORM, FormValues, oauth_request
from broker.web.pages import CSRF_FIELD, csrf_valid

router = APIRouter(tags=["oauth"])


def _unusable(request: Request, runtime: RuntimeDep, message: str) -> Response:
    context = {"title": "This sharing request can't be shown", "message": message}
    return render(request, "error.html", context, status=400, secure=runtime.settings.secure_cookies)


@router.get(
    "/oauth/authorize",
    include_in_schema=True,
    operation_id="authorize",
    responses={
        302: {"description": "Redirect to the brand with a code or an error"},
        400: {"description": "Error page: the request cannot be trusted"},
    },
)
def authorize(request: Request, db: DbSession, runtime: RuntimeDep, session: PortalSession) -> Response:
    """Authorization endpoint (authorization code + PKCE S256; OpenID Connect with the `openid` scope):
    log in if needed, then the consent screen."""
    try:
        pending = PendingAuthorization.start(
            oauth_request(request, {}, db, runtime), signed_in=session is not None
        )
    except AuthorizationRefused as refusal:
        return refusal.redirect or _unusable(request, runtime, refusal.description)
    if not _max_age_usable(pending):
        return pending.refuse("invalid_request", "max_age must be a whole number of seconds")
    silent = "none" in pending.prompts
    if session is None or not _login_fresh(pending, session, runtime):
        return pending.refuse("login_required") if silent else _login_first(pending, runtime)
    if silent:
        standing = standing_grant(runtime.grants, db, pending.request, customer_id=session.customer_id)
        if standing is None:
            return pending.refuse("consent_required")
        return pending.finish(standing, _authentication(session))
    return _consent_page(request, db, runtime, pending, session.customer_id)


def _consent_page(
    request: Request,
    db: Session,
    runtime: Runtime,
    pending: PendingAuthorization,
    customer_id: UUID,
    *,
    retry: Retry | None = None,
) -> Response:
    """The consent screen (again, saying why, with `retry`); for a profile in self-custody, with what
    the browser needs to seal the grant to the brand."""
    held = runtime.vault.is_held(db, customer_id)
    screen = ConsentScreen.build(
        pending.request,
        runtime.vault,
        db,
        customer_id=customer_id,
        email_verified=_email_verified(db, customer_id),
        now=runtime.clock(),
        held=held,
    )
    names = [f["name"] for f in screen.fields]
    sealing = runtime.custody.sealing(db, customer_id, screen.offer, names) if held else None
    return render(
        request,
        "consent.html",
        consent_context(screen, retry=retry, held=sealing),
        status=200 if retry is None else 400,
        secure=runtime.settings.secure_cookies,
        form_targets=screen.form_targets,
    )


def _held_answer(values: dict[str, list[str]]) -> tuple[UUID, Seal] | None:
    """The grant id the browser chose and its sealed copies, if the form carries them well formed."""
    try:
        grant_id = UUID((values.get("grant_id") or [""])[0])
        sealed = SealIn.model_validate_json((values.get("sealed") or [""])[0])  # the API's own shape
    except (ValueError, ValidationError):
        return None
    if grant_id.version != 4:
        return None
    return grant_id, sealed.seal()


@router.post(
    "/oauth/authorize",
    operation_id="authorizeDecision",
    openapi_extra={"requestBody": {"content": FORM}},
    responses={
        302: {"description": "Redirect to the brand with a code or access_denied"},
        400: {"description": "Error page"},
        403: {"description": "Missing or wrong CSRF token"},
    },
)
def authorize_decision(
    request: Request, form: FormValues, db: DbSession, runtime: RuntimeDep, session: PortalSession
) -> Response:
    """The consent form's answer: approve (with the fields kept) or deny."""
    secure = runtime.settings.secure_cookies
    if form.problem is not None:
        return _unusable(request, runtime, form.problem)
    submitted = (form.values.get(CSRF_FIELD) or [""])[0]
    if not csrf_valid(request, submitted, str(runtime.settings.base_url)):
        context = {
            "title": "This form expired",
            "message": "For your safety the consent form must be sent from this page. "
            "Go back to the brand and start again.",
        }
        return render(request, "error.html", context, status=403, secure=secure)
    params = {k: v for k, v in form.values.items() if k not in FORM_ONLY}
    try:
        pending = PendingAuthorization.start(
            oauth_request(request, params, db, runtime), signed_in=session is not None
        )
    except AuthorizationRefused as refusal:
        return refusal.redirect or _unusable(request, runtime, refusal.description)
    if session is None:
        return login_redirect(
            "/oauth/authorize?" + urlencode([(k, v) for k, vs in params.items() for v in vs])
        )
    customer_id = session.customer_id
    verified = _email_verified(db, customer_id)
    held = runtime.vault.is_held(db, customer_id)
    answer = None
    if held and (form.values.get("decision") or [""])[0] == "approve":
        brand = db.get(Brand, pending.request.offer.brand_id)
        if brand is None or brand.encryption_jwks() is None:
            return _consent_page(request, db, runtime, pending, customer_id, retry=Retry.UNSEALABLE)
        answer = _held_answer(form.values)
        if answer is None or db.get(Grant, answer[0]) is not None:
            return _consent_page(request, db, runtime, pending, customer_id, retry=Retry.UNSEALED)
    try:
        with isolated(db):  # a grant whose sealed copy is refused is not made
            outcome = decide(
                runtime.grants,
                db,
                pending.request,
                customer_id=customer_id,
                form=form.values,
                email_verified=verified,
                grant_id=None if answer is None else answer[0],
            )
            if answer is not None and outcome.grant is not None:
                runtime.custody.seal_new(db, outcome.grant, answer[1])
    except (ValidationFailed, IntegrityError):  # a copy that does not fit; the id of a twin submission
        return _consent_page(request, db, runtime, pending, customer_id, retry=Retry.UNSEALED)
    if outcome.retry is not None:
        return _consent_page(request, db, runtime, pending, customer_id, retry=outcome.retry)
    return pending.finish(outcome.grant, _authentication(session))


LOGIN_AFTER = "login_after"  # added on the way to the login page (see the module's doc)


def _max_age(pending: PendingAuthorization) -> str | None:
    """An OpenID Connect request's `max_age`, as sent (plain OAuth has none)."""
    return dict(pending.request.params).get("max_age") if pending.openid else None


def _max_age_usable(pending: PendingAuthorization) -> bool:
    """Whether the request's `max_age`, if any, is a whole number of seconds."""
    max_age = _max_age(pending)
    return max_age is None or (max_age.isascii() and max_age.isdigit() and len(max_age) <= 10)


def _login_fresh(pending: PendingAuthorization, session: CustomerSession, runtime: Runtime) -> bool:
    """Whether the customer's login satisfies the request's `prompt=login` and `max_age` (usable)."""
    params = dict(pending.request.params)
    max_age = _max_age(pending)
    logged_in_at = session.authenticated_at
    too_old = max_age is not None and (runtime.clock() - logged_in_at).total_seconds() > int(max_age)
    if "login" not in pending.prompts and not too_old:
        return True
    after = params.get(LOGIN_AFTER, "")
    if not (after.isascii() and after.isdigit() and len(after) <= 17):
        return False
    return _microseconds(logged_in_at) > int(after)


def _login_first(pending: PendingAuthorization, runtime: Runtime) -> Response:
    """To the login page, then back to this request (marked with when it was sent, `LOGIN_AFTER`)."""
    params = [(k, v) for k, v in pending.request.params if k != LOGIN_AFTER]
    params.append((LOGIN_AFTER, str(_microseconds(runtime.clock()))))
    hint = dict(pending.request.params).get("login_hint")
    return login_redirect("/oauth/authorize?" + urlencode(params), login_hint=hint)


def _microseconds(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _authentication(session: CustomerSession) -> Authentication:
    return Authentication(session.authenticated_at, session.auth_method, session.second_factor)


def _email_verified(db: Session, customer_id: UUID) -> bool:
    customer = db.get(Customer, customer_id)
    return customer is not None and customer.email_verified_at is not None
