"""OpenID Connect RP-initiated logout (`end_session_endpoint`): `GET /oauth/logout` from a brand,
`POST /oauth/logout` from the confirmation form.

The request is checked by `broker.oauth.logout` (never a redirect to an address the brand did not
register). A customer logged in here is logged out at once when the brand's `id_token_hint` names
them; otherwise they are asked first, on a form carrying this browser's CSRF token, so that a link or
an image elsewhere cannot end their session. Then back to the brand's `post_logout_redirect_uri`
(with its `state`), or a page saying they are logged out.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from broker.oauth.clients import origin_of
from broker.oauth.logout import LogoutRefused, LogoutRequest, logout_request
from broker.portal.guards import PortalSession
from broker.portal.html import render
from broker.web.deps import DbSession, RuntimeDep, clear_session_cookie
from broker.web.oauth_request import FORM, FormValues
from broker.web.pages import CSRF_FIELD, csrf_valid

router = APIRouter(tags=["oauth"])

# What a logout request may carry (RP-initiated logout 1.0 §2); anything else is dropped.
_PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint", "ui_locales")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    302: {"description": "Logged out: back to the brand's registered post_logout_redirect_uri"},
    200: {"description": "The confirmation page, or the logged-out page"},
    400: {"description": "Error page: the request names an unregistered address or a foreign ID token"},
}


@router.get("/oauth/logout", operation_id="endSession", responses=_RESPONSES)
def end_session(request: Request, db: DbSession, runtime: RuntimeDep, session: PortalSession) -> Response:
    """RP-initiated logout: log the customer out (at once if the `id_token_hint` names them, else
    once they confirm), then back to the brand's `post_logout_redirect_uri` with its `state`."""
    params = {name: request.query_params[name] for name in _PARAMS if name in request.query_params}
    try:
        asked = logout_request(db, runtime.oauth, params)
    except LogoutRefused as refused:
        return _refused(request, runtime, refused)
    if session is not None and not asked.names(runtime.oauth, session.customer_id):
        context = {"brand_name": asked.brand_name, "params": sorted(params.items())}
        targets = (origin_of(asked.redirect_to),) if asked.redirect_to else ()
        return render(
            request, "logout.html", context, secure=runtime.settings.secure_cookies, form_targets=targets
        )
    if session is not None:
        runtime.accounts.log_out(db, session)
    return _done(request, runtime, asked)


@router.post(
    "/oauth/logout",
    operation_id="endSessionConfirmed",
    openapi_extra={"requestBody": {"content": FORM}},
    responses={**_RESPONSES, 403: {"description": "Missing or wrong CSRF token"}},
)
def end_session_confirmed(
    request: Request, form: FormValues, db: DbSession, runtime: RuntimeDep, session: PortalSession
) -> Response:
    """The confirmation form's answer: log out, then as `GET /oauth/logout` would."""
    submitted = (form.values.get(CSRF_FIELD) or [""])[0]
    if form.problem is not None or not csrf_valid(request, submitted, str(runtime.settings.base_url)):
        context = {"title": "This form expired", "message": "Go back to the brand and log out again."}
        return render(request, "error.html", context, status=403, secure=runtime.settings.secure_cookies)
    params = {name: form.values[name][0] for name in _PARAMS if form.values.get(name)}
    try:
        asked = logout_request(db, runtime.oauth, params)
    except LogoutRefused as refused:
        return _refused(request, runtime, refused)
    if session is not None:
        runtime.accounts.log_out(db, session)
    return _done(request, runtime, asked)


def _done(request: Request, runtime: RuntimeDep, asked: LogoutRequest) -> Response:
    response: Response
    if asked.redirect_to is not None:
        response = RedirectResponse(asked.redirect_to, status_code=302)
    else:
        response = render(request, "logged_out.html", {}, secure=runtime.settings.secure_cookies)
    clear_session_cookie(response, runtime.settings)
    return response


def _refused(request: Request, runtime: RuntimeDep, refused: LogoutRefused) -> Response:
    context = {"title": "This logout request can't be followed", "message": refused.description}
    return render(request, "error.html", context, status=400, secure=runtime.settings.secure_cookies)
