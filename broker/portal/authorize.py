"""The OAuth authorization endpoint's pages: `GET /oauth/authorize` shows the consent screen (after
a login if needed), `POST /oauth/authorize` takes the customer's answer.

They answer in OAuth's own terms (error redirects carrying `iss`) when the request names a client
and redirect URI that can be trusted; otherwise an error page, never a redirect. The other OAuth
endpoints (token, revoke, introspect, metadata, JWKS) are the JSON API's: `broker.api.oauth`.
"""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from broker.accounts.models import Customer
from broker.oauth.authorize import AuthorizationRefused, PendingAuthorization
from broker.portal.consent_screen import FORM_ONLY, consent_context
from broker.portal.guards import PortalSession, login_redirect
from broker.portal.html import render
from broker.usecases.consent_decision import ConsentScreen, decide
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
    """Authorization endpoint (authorization code + PKCE S256): log in if needed, then the consent screen."""
    try:
        pending = PendingAuthorization.start(oauth_request(request, {}, db, runtime))
    except AuthorizationRefused as refusal:
        return refusal.redirect or _unusable(request, runtime, refusal.description)
    if session is None:
        return login_redirect(request.url.path + "?" + request.url.query)
    verified = _email_verified(db, session.customer_id)
    screen = ConsentScreen.build(
        pending.request, runtime.vault, db, customer_id=session.customer_id, email_verified=verified
    )
    return render(
        request,
        "consent.html",
        consent_context(screen),
        secure=runtime.settings.secure_cookies,
        form_targets=screen.form_targets,
    )


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
        pending = PendingAuthorization.start(oauth_request(request, params, db, runtime))
    except AuthorizationRefused as refusal:
        return refusal.redirect or _unusable(request, runtime, refusal.description)
    if session is None:
        return login_redirect(
            "/oauth/authorize?" + urlencode([(k, v) for k, vs in params.items() for v in vs])
        )
    verified = _email_verified(db, session.customer_id)
    outcome = decide(
        runtime.grants,
        db,
        pending.request,
        customer_id=session.customer_id,
        form=form.values,
        email_verified=verified,
    )
    if outcome.retry is not None:
        screen = ConsentScreen.build(
            pending.request, runtime.vault, db, customer_id=session.customer_id, email_verified=verified
        )
        return render(
            request,
            "consent.html",
            consent_context(screen, retry=outcome.retry),
            status=400,
            secure=secure,
            form_targets=screen.form_targets,
        )
    return pending.finish(outcome.grant)


def _email_verified(db: Session, customer_id: UUID) -> bool:
    customer = db.get(Customer, customer_id)
    return customer is not None and customer.email_verified_at is not None
