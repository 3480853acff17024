"""OAuth scopes, the one vocabulary: every parser and formatter of a scope string is here.

Two kinds of scope exist (RFC 6749 §3.3: a space-separated list, order and case significant):

- `profile:<field>`, one per catalogue field (`vault.fields.CATALOGUE`): only a customer grants
  them, through an offer, and a grant's fields bound them;
- brand-level scopes (`offers:write`, `grants:read` …) that a brand holds as a client and uses with
  client credentials.

The readers (`split_scope`, `profile_fields`, `granted_scope`) take any string, as tokens and requests
arrive; which scopes a request may ask for is the authorization server's to refuse (`broker.oauth`,
against `supported_scopes` and the offer).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final

from vault.fields import CATALOGUE

__all__ = [
    "BRAND_SCOPES", "PROFILE_SCOPE_PREFIX", "field_scope", "fields_scope", "granted_scope",
    "is_profile_scope", "profile_fields", "split_scope", "supported_scopes",
]  # fmt: skip

PROFILE_SCOPE_PREFIX: Final = "profile:"
BRAND_SCOPES: Final = (
    "offers:read",
    "offers:write",
    "grants:read",
    "grants:write",
    "webhooks:read",
    "webhooks:write",
)


def split_scope(scope: str | None) -> list[str]:
    """The scopes of a space-separated scope string, as sent (none for None or blank)."""
    return (scope or "").split()


def is_profile_scope(scope: str) -> bool:
    """Whether one scope is `profile:<something>` (the field is not checked)."""
    return scope.startswith(PROFILE_SCOPE_PREFIX)


def _field(scope: str) -> str | None:
    """The field name a `profile:` scope names (unchecked), or None for any other scope."""
    return scope.removeprefix(PROFILE_SCOPE_PREFIX) if is_profile_scope(scope) else None


def field_scope(name: str) -> str:
    """The OAuth scope for one catalogue field: `profile:<name>`."""
    return PROFILE_SCOPE_PREFIX + name


def fields_scope(names: Iterable[str]) -> str:
    """The scope string for these fields, in their order: `profile:a profile:b`."""
    return " ".join(field_scope(name) for name in names)


def profile_fields(scope: str | None) -> list[str]:
    """The field names of the `profile:` scopes in `scope`, in order, as sent (other scopes are
    skipped; names are not checked against the catalogue: the caller compares them to what it allows)."""
    return [s.removeprefix(PROFILE_SCOPE_PREFIX) for s in split_scope(scope) if is_profile_scope(s)]


def granted_scope(scope: str | None, fields: Collection[str]) -> str:
    """The `profile:` scopes of `scope` whose field is among `fields`, in order: a token's scope
    never goes beyond what its grant still allows."""
    return " ".join(s for s in split_scope(scope) if _field(s) in fields)


def supported_scopes() -> list[str]:
    """Every scope the broker knows: one per catalogue field, then the brand-level ones."""
    return [field_scope(name) for name in CATALOGUE] + list(BRAND_SCOPES)
