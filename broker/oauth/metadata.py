"""RFC 8414 authorization server metadata."""

from __future__ import annotations

from typing import Any

from broker.consent.scopes import supported_scopes
from broker.oauth.signing import ALGORITHM


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    """Everything a brand's OAuth library needs to discover, for the given issuer URL."""
    auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": supported_scopes(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "authorization_details_types_supported": ["consentry_offer"],
        "access_token_signing_alg_values_supported": [ALGORITHM],
        "service_documentation": f"{issuer}/openapi.json",
    }
