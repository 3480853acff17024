"""The `purpose` a read states (`GET /v1/profile?purpose=`, UserInfo's `purpose`): a slug of the
purpose vocabulary (`broker.consent.purposes`), checked before the read, and its OpenAPI parameter.
Both read endpoints parse their own query (they answer plainly, without FastAPI's parameters)."""

from __future__ import annotations

from typing import Any, Final

from broker.consent.purposes import PURPOSES, describe_purpose

__all__ = ["PURPOSE_PARAMETER", "checked_purpose"]

PURPOSE_PARAMETER: Final[dict[str, Any]] = {
    "name": "purpose",
    "in": "query",
    "required": False,
    "description": "the purpose this read is for: only the fields granted for it are returned. Needed "
    "when the grant covers several purposes (else 400 purpose-required); one not granted is 403 "
    "purpose-not-granted, logged as a refused read. Defaults to the token's purpose claim, if any.",
    "schema": {"type": "string", "enum": list(PURPOSES)},
}


def checked_purpose(value: str | None) -> str | None:
    """`value` if it is a known purpose (None when absent); 422 pointing at `/purpose` otherwise."""
    if value is None:
        return None
    return describe_purpose(value).slug
