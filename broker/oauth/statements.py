"""A brand's signed statements: a compact JWS signed with a key of the brand's registered `jwks`
(RFC 7591 §2), such as its acknowledgement that a grant ended (`broker.usecases.acknowledgements`).

The JWS must be signed with an asymmetric algorithm (Ed25519, ES256, RS256, PS256; never `none`, never
a MAC) by the key its `kid` names, carry `typ` the statement's type, and its claims must name the
brand (`iss`, its client id) and this broker (`aud`, the issuer) and be fresh (`iat` within
`MAX_AGE`, not in the future beyond a minute's skew). What the statement says is the caller's to
check. A refusal is 422 pointing at `/statement`, saying what to fix.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Final, NoReturn, cast

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from broker.accounts.models import Brand
from broker.errors import ValidationFailed

__all__ = ["ALGORITHMS", "MAX_AGE", "SignedStatement", "verify_statement"]

ALGORITHMS: Final = ["Ed25519", "ES256", "RS256", "PS256"]
MAX_AGE: Final = timedelta(minutes=10)
_SKEW: Final = timedelta(minutes=1)


class SignedStatement:
    """A verified statement: its claims and the public JWK that signed it."""

    __slots__ = ("claims", "key")

    def __init__(self, claims: dict[str, Any], key: dict[str, Any]) -> None:
        self.claims, self.key = claims, key


def verify_statement(brand: Brand, token: str, *, typ: str, audience: str, now: datetime) -> SignedStatement:
    """Check `token` as a statement of type `typ` signed by `brand` for `audience` at `now`."""
    signing = brand.signing_jwks()
    if signing is None:
        _refuse("you registered no keys (jwks) to sign with: send the statement's fields instead")
    keys = KeySet.import_key_set(cast(KeySetSerialization, signing))
    try:
        kid = jws.extract_compact(token.encode()).headers().get("kid")
    except (JoseError, ValueError):
        _refuse("the statement is not a compact JWS (header.payload.signature, base64url)")
    if not isinstance(kid, str) or not any(k.kid == kid for k in keys.keys):
        _refuse("the statement's JWS header must name (kid) one of the keys you registered (jwks)")
    try:
        signed = jws.deserialize_compact(token, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError) as exc:
        _refuse(
            f"the statement is not a compact JWS signed ({', '.join(ALGORITHMS)}) by a key of your "
            f"registered jwks ({type(exc).__name__})"
        )
    header = signed.headers()
    if header.get("typ") != typ:
        _refuse(f"the statement's JWS header must say typ {typ!r}")
    try:
        claims = json.loads(signed.payload)
    except ValueError:
        _refuse("the statement's payload is not JSON")
    if not isinstance(claims, dict):
        _refuse("the statement's payload is not a JSON object")
    if claims.get("iss") != brand.client_id or claims.get("aud") != audience:
        _refuse(f"the statement must name you (iss {brand.client_id!r}) and this broker (aud {audience!r})")
    issued = claims.get("iat")
    if not isinstance(issued, int) or isinstance(issued, bool):
        _refuse("the statement needs iat, the time it was signed in seconds since the epoch")
    at = datetime.fromtimestamp(issued, tz=now.tzinfo)
    if not now - MAX_AGE <= at <= now + _SKEW:
        _refuse(f"the statement was signed at {at.isoformat()}; sign it afresh (within {MAX_AGE} of sending)")
    return SignedStatement(claims, keys.get_by_kid(header["kid"]).as_dict(private=False))


def _refuse(detail: str) -> NoReturn:
    raise ValidationFailed(detail, errors=[{"pointer": "/statement", "detail": detail}])
