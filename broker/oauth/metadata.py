"""Discovery: RFC 8414 authorization server metadata and OpenID Connect Discovery 1.0, one document.

Both `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration` serve
`authorization_server_metadata`: a relying party finds the same endpoints, algorithms and scopes
whichever it reads, and the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from broker.consent.scopes import supported_scopes
from broker.oauth.oidc import (
    ACR_MULTI_FACTOR,
    ACR_SINGLE_FACTOR,
    FIELDS_CLAIM,
    OIDC_SCOPES,
    PREFERENCES_CLAIM,
    SEALED_CLAIM,
    SEALED_VERSION_CLAIM,
)
from broker.oauth.signing import ALGORITHM, ID_TOKEN_ALGORITHMS
from broker.versions import API_VERSIONS

# Every claim an ID token or UserInfo may hold (Discovery §3 `claims_supported`).
CLAIMS_SUPPORTED = [
    "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
    "given_name", "family_name", "birthdate", "email", "email_verified", "phone_number",
    "phone_number_verified", "address", FIELDS_CLAIM, PREFERENCES_CLAIM, SEALED_CLAIM, SEALED_VERSION_CLAIM,
]  # fmt: skip


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    """Everything a brand's OAuth or OpenID Connect library needs to discover, for the given issuer."""
    auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "registration_endpoint": f"{issuer}/oauth/register",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": [*OIDC_SCOPES, *supported_scopes()],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA", "Ed25519"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "authorization_details_types_supported": ["consentry_offer"],
        "access_token_signing_alg_values_supported": [ALGORITHM],
        # OpenID Connect Discovery 1.0 §3
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGORITHMS),
        "claims_supported": CLAIMS_SUPPORTED,
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": [ACR_SINGLE_FACTOR, ACR_MULTI_FACTOR],
        "ui_locales_supported": ["en"],
        "service_documentation": f"{issuer}/openapi.json",
        # Consentry's own: the versions of the brand and auditor API (`/v1`) this server serves, so a
        # client that speaks none of them stops with a clear message before its first call.
        "consentry_api_versions": list(API_VERSIONS),
    }
