"""OpenID Connect UserInfo (Core §5.3): the profile read, answered as standard claims.

The read is `ProfileReads.serve_async`, the very one behind `GET /v1/profile`: the token verified,
the grant live right now, value and reconfirmation checked, and the read's audit entry committed
before any claim leaves. Only the shape differs (`broker.oauth.oidc.userinfo_claims`), and UserInfo
also needs the token to carry the `openid` scope. The customer's preferences join the claims
(`PREFERENCES_CLAIM`), read as `GET /v1/preferences` reads them (`PreferenceReads`, with its own
`preferences.read` entry).

Its errors are RFC 6750's, as relying parties expect of a protected resource: `WWW-Authenticate:
Bearer error="invalid_token"` (401) for a token that is missing, invalid, expired or revoked, or
whose grant has ended; `insufficient_scope` (403) without `openid`; and `access_denied` (403) when
the grant is suspended, its reconfirmation is due, value is overdue or the purpose is not granted;
`invalid_request` (400) for an unknown purpose, or none for a grant of several. The body is OAuth's error JSON
with the broker's problem type beside it, so that a brand's engineer can tell those apart.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from broker.errors import (
    BrokerError,
    GrantExpired,
    GrantRevoked,
    NotAuthenticated,
    PurposeRequired,
    ValidationFailed,
)
from broker.oauth.bearer import verify_claims
from broker.oauth.oidc import (
    OPENID,
    PREFERENCES_CLAIM,
    SEALED_CLAIM,
    SEALED_VERSION_CLAIM,
    is_openid,
    userinfo_claims,
)
from broker.runtime import Runtime
from broker.web.purposes import checked_purpose

__all__ = ["userinfo_response"]

_NO_STORE = {"cache-control": "no-store"}


async def userinfo_response(
    runtime: Runtime, authorization: str | None, request_id: str, purpose: str | None = None
) -> Response:
    """UserInfo's answer for the `Authorization` header sent, read for `purpose`."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _error(401, "invalid_token", "send the access token as 'Authorization: Bearer <token>'")
    try:
        if not is_openid(str(verify_claims(runtime.oauth, token).get("scope", ""))):
            return _error(403, "insufficient_scope", "this access token was not issued with the openid scope")
        served = await runtime.reads.serve_async(
            runtime.sessions, token, request_id=request_id, purpose=checked_purpose(purpose)
        )
    except (NotAuthenticated, GrantRevoked, GrantExpired) as refused:
        return _error(401, "invalid_token", refused.detail, refused)
    except (PurposeRequired, ValidationFailed) as refused:
        return _error(400, "invalid_request", refused.detail, refused)
    except BrokerError as refused:
        if refused.status == 403:
            return _error(403, "access_denied", refused.detail, refused)
        raise  # a 503 (the read was not recorded), or a bug: the app's own problem+json
    claims = userinfo_claims(served["sub"], served["fields"])
    if served.get("sealed") is not None:  # a self-custody grant: only the brand can open its fields
        claims[SEALED_CLAIM], claims[SEALED_VERSION_CLAIM] = served["sealed"], served["grant_version"]
    try:  # its own transaction: the grant may have ended since the read (a refusal, as for the read)
        claims[PREFERENCES_CLAIM] = await run_in_threadpool(_preferences, runtime, token)
    except (NotAuthenticated, GrantRevoked, GrantExpired) as refused:
        return _error(401, "invalid_token", refused.detail, refused)
    except BrokerError as refused:
        if refused.status == 403:
            return _error(403, "access_denied", refused.detail, refused)
        raise
    return JSONResponse(claims, headers=_NO_STORE)


def _preferences(runtime: Runtime, token: str) -> dict[str, object]:
    """The customer's preferences, which every brand with a live grant may read (and must honour),
    recorded as their own access (`preferences.read`) once the profile's read was."""
    with runtime.sessions() as db:
        _, _, preferences = runtime.preference_reads.read(db, token)
        db.commit()
    return preferences.model_dump(mode="json")


def _error(status: int, error: str, description: str, problem: BrokerError | None = None) -> Response:
    challenge = f'Bearer realm="consentry", error="{error}", error_description={json.dumps(description)}'
    if error == "insufficient_scope":
        challenge += f', scope="{OPENID}"'
    body = {"error": error, "error_description": description}
    if problem is not None:
        body["type"] = problem.type_uri
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, "www-authenticate": challenge})
