"""`private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): a brand that
registered public keys (`jwks`, at registration) proves who it is with a short-lived JWT signed by one
of them, instead of a secret it would have to keep and send.

Authlib's `JWTBearerClientAssertion` checks the assertion: `iss` and `sub` the client id, signed by a
key of the brand's `jwks` (never `none`, never a MAC), `exp` not past (with a minute of leeway), `aud`
this broker (its issuer or its token endpoint, as RFC 7523 allows). Here each `jti` is remembered
until the assertion expires (`ClientAssertion`), and one seen before is refused: a replayed assertion
is worth nothing. A brand with keys authenticates only this way (`OAuthClient.check_endpoint_auth_method`),
at the token, introspection and revocation endpoints alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.jwk import KeySet, KeySetSerialization
from sqlalchemy.exc import IntegrityError

from broker.accounts.models import keys_of_use
from broker.oauth.clients import OAuthClient
from broker.oauth.context import OAuthHTTPRequest
from broker.oauth.models import ClientAssertion

__all__ = ["ASSERTION_TYPE", "PRIVATE_KEY_JWT", "PrivateKeyJwt"]

PRIVATE_KEY_JWT = "private_key_jwt"
ASSERTION_TYPE = JWTBearerClientAssertion.CLIENT_ASSERTION_TYPE
MAX_JTI = 200  # `ClientAssertion.jti`'s length


class PrivateKeyJwt(JWTBearerClientAssertion):
    """Authlib's client assertion check, for one request (`ctx`: where its `jti` is remembered)."""

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

    def __init__(self, request: OAuthHTTPRequest) -> None:
        super().__init__(validate_jti=True, leeway=60)
        self.request = request

    def get_audiences(self) -> list[str]:
        """This broker: its issuer, or its token endpoint (RFC 7523 §3)."""
        issuer = self.request.ctx.services.issuer
        return [issuer, f"{issuer}/oauth/token"]

    def resolve_client_public_key(self, client: OAuthClient) -> KeySet:
        """The brand's registered signing keys (never its encryption keys); none, for a brand with none."""
        keys = cast(KeySetSerialization, keys_of_use(client.brand.jwks, "sig") or {"keys": []})
        return KeySet.import_key_set(keys)

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        """Remember `jti` until the assertion expires; False if it was seen before (a replay)."""
        ctx = self.request.ctx
        client = self.request.client
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI or ctx.unit is None:
            return False
        session = ctx.unit
        if session.get(ClientAssertion, (client.brand.id, jti)) is not None:
            return False
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        try:
            with session.begin_nested():
                session.add(ClientAssertion(brand_id=client.brand.id, jti=jti, expires_at=expires))
        except IntegrityError:  # the same assertion, presented twice at once
            return False
        return True
