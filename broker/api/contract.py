"""The error side of the OpenAPI document: what `broker.web.problems` and the middleware really answer.

FastAPI documents only what each route declares, and documents validation errors as its own
`application/json` shape. Every error of the JSON API is in fact RFC 9457 problem+json, and a few
come from shared machinery rather than the route: a request body that is not JSON (400) or over the
limit (413) can reach any operation that takes a JSON body. This module rewrites the generated
document so that it says so; the OAuth endpoints keep their RFC 6749 error shapes.
"""

from __future__ import annotations

from typing import Any

from broker.errors import PROBLEM_BASE

PROBLEM_JSON = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem: `type` is stable, `detail` says what was wrong and what to do.",
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
_BODY_ERRORS = {
    "400": "The body is not JSON, or not a JSON object",
    "413": "The body is over the configured limit (CONSENTRY_MAX_BODY_BYTES)",
    "422": "Invalid input; `errors` points at each problem",
}
_PARAMETER_ERROR = "An invalid path or query parameter; `errors` points at each"
# These answer in their own protocol's terms (RFC 6749 error JSON, redirects, pages).
_OWN_ERRORS = ("/oauth/", "/.well-known/")


def _takes_json(operation: dict[str, Any]) -> bool:
    return "application/json" in operation.get("requestBody", {}).get("content", {})


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if _takes_json(operation):
        for status, description in _BODY_ERRORS.items():
            responses.setdefault(status, {"description": description})
    if operation.get("parameters"):
        responses.setdefault("422", {"description": _PARAMETER_ERROR})
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            if response.get("description") == "Validation Error":
                response["description"] = _PARAMETER_ERROR


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Rewrite `spec` in place (idempotent): every 4xx and 5xx of the JSON API is problem+json, and
    the errors shared machinery gives are listed on each operation they can reach."""
    for path, item in spec.get("paths", {}).items():
        if path.startswith(_OWN_ERRORS):
            continue
        for operation in item.values():
            _document_operation(operation)
    schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return spec
