"""The error side of the OpenAPI document: what `broker.web.problems` and the middleware really answer.

FastAPI documents only what each route declares, and documents validation errors as its own
`application/json` shape. Every error of the JSON API is in fact RFC 9457 problem+json, and a few
come from shared machinery rather than the route: a request body that is not JSON (400) or over the
limit (413) can reach any operation that takes a JSON body. This module rewrites the generated
document so that it says so; the OAuth endpoints keep their RFC 6749 error shapes.

Each error response of an operation lists the problem types it can be: routes declare them with
`problems(description, *types)` in their `responses=`, and the `type` member of that response's
schema is the enum of their URIs. A type in `ANSWERED_ANYWHERE` is added to every response of its
status and named in the Problem schema's description, since any request can meet it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from broker.errors import (
    ANSWERED_ANYWHERE,
    PROBLEM_BASE,
    PROBLEM_TYPES,
    BrokerError,
    CrossSiteRefused,
    MalformedRequest,
    NotAuthenticated,
    ReauthenticationRequired,
    RequestTooLarge,
    ValidationFailed,
)

PROBLEM_JSON = "application/problem+json"
_PROBLEM_REF = "#/components/schemas/Problem"
_TYPES = "x-problem-types"  # carries a route's declared types to `document_problems`, which drops it
_BY_URI = {kind.type_uri: kind for kind in PROBLEM_TYPES}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem: `type` is stable, `detail` says what was wrong and what to do. "
    "Each operation lists the types it answers with; besides those, any request may be answered with "
    + ", ".join(f"`{kind.slug}` ({kind.status})" for kind in ANSWERED_ANYWHERE)
    + ".",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "example": PROBLEM_BASE + "validation"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "description": "For `validation`: one entry per problem, each pointing at the input",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "detail"],
                "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

# Answered by shared machinery for any operation that takes a JSON body.
_BODY_ERRORS: dict[type[BrokerError], str] = {
    MalformedRequest: "The body is not JSON, or not a JSON object",
    RequestTooLarge: "The body is over the configured limit (CONSENTRY_MAX_BODY_BYTES)",
    ValidationFailed: "Invalid input; `errors` points at each problem",
}
_PARAMETER_ERROR = "An invalid path or query parameter; `errors` points at each"
# These answer in their own protocol's terms (RFC 6749 error JSON, redirects, pages).
_OWN_ERRORS = ("/oauth/", "/.well-known/")


def problems(description: str, *types: type[BrokerError]) -> dict[str, Any]:
    """One error response for a route's `responses=`: what it means, and the problem types it can be
    (all of one status, the key it is given under)."""
    return {"description": description, _TYPES: [kind.type_uri for kind in types]}


_REAUTHENTICATE = (
    "`reauthentication-required`: confirm it is you at POST /v1/sessions/current/reauthenticate "
    "(within 5 minutes, with the second factor if set up)"
)
# The problems a write behind `FreshSession` (broker.web.deps) answers with, for its `responses=`.
FRESH_SESSION_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated),
    403: problems(
        f"Cross-site request refused; or {_REAUTHENTICATE}", CrossSiteRefused, ReauthenticationRequired
    ),
}
# ... and a read behind it (a safe method: no cross-site check).
FRESH_READ_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **FRESH_SESSION_PROBLEMS,
    403: problems(_REAUTHENTICATE, ReauthenticationRequired),
}


def documented_types(response: dict[str, Any]) -> list[str]:
    """The problem type URIs an error response of the document lists."""
    schema = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
    parts = schema.get("allOf", [])
    found: list[str] = parts[1]["properties"]["type"]["enum"] if len(parts) == 2 else []
    return found


def _schema(uris: Iterable[str]) -> dict[str, Any]:
    enum = {"properties": {"type": {"type": "string", "enum": sorted(set(uris))}}}
    return {"allOf": [{"$ref": _PROBLEM_REF}, enum]}


def _takes_json(operation: dict[str, Any]) -> bool:
    return "application/json" in operation.get("requestBody", {}).get("content", {})


def _shared(operation: dict[str, Any]) -> dict[type[BrokerError], str]:
    """The problems shared machinery answers this operation with, each with a description."""
    shared = dict(_BODY_ERRORS) if _takes_json(operation) else {}
    if operation.get("parameters"):
        shared.setdefault(ValidationFailed, _PARAMETER_ERROR)
    return shared


def _document_operation(where: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for kind, description in _shared(operation).items():
        response = responses.setdefault(str(kind.status), {"description": description})
        response[_TYPES] = [*response.get(_TYPES, []), kind.type_uri]
    for status, response in responses.items():
        if status[0] not in "45":
            continue
        uris = [*documented_types(response), *response.pop(_TYPES, [])]
        if not uris:
            raise ValueError(f"{where}: its {status} names no problem type; declare it with problems()")
        for uri in uris:
            if str(_BY_URI[uri].status) != status:
                raise ValueError(f"{where}: {uri} is a {_BY_URI[uri].status}, documented as a {status}")
        uris += [kind.type_uri for kind in ANSWERED_ANYWHERE if str(kind.status) == status]
        response["content"] = {PROBLEM_JSON: {"schema": _schema(uris)}}
        if response.get("description") == "Validation Error":
            response["description"] = _PARAMETER_ERROR


def _drop_impossible_validation_error(where: str, operation: dict[str, Any]) -> None:
    """FastAPI gives every operation with a parameter a 422 of its own schema (dropped below). An
    endpoint answering in its own protocol's terms reads its request itself: its only parameters are
    string path segments, which always validate, and its body (documented by hand) is read by the
    route, so that 422 cannot happen and is removed (it named a schema the document no longer has)."""
    if "422" not in operation.get("responses", {}):
        return
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "path" or parameter.get("schema", {}).get("type") != "string":
            raise ValueError(f"{where}: {parameter.get('name')} can fail validation; document its 422")
    for content in operation.get("requestBody", {}).get("content", {}).values():
        if "$ref" in content.get("schema", {}):  # a model FastAPI validates (not one read by hand)
            raise ValueError(f"{where}: its body model can fail validation; document its 422")
    del operation["responses"]["422"]


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Rewrite `spec` in place (idempotent): every 4xx and 5xx of the JSON API is problem+json listing
    the types it can be, and the errors shared machinery gives are listed on each operation they can
    reach."""
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if path.startswith(_OWN_ERRORS):
                _drop_impossible_validation_error(f"{method.upper()} {path}", operation)
            else:
                _document_operation(f"{method.upper()} {path}", operation)
    schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return spec
