"""The HTTP side of OAuth requests: a Starlette request read into the `OAuthHTTPRequest` that
`broker.oauth`'s Authlib server takes, and the bounded form reading every OAuth endpoint shares.

Used by the token endpoints (`broker.api.oauth`) and the authorization endpoint, whose pages live
with the portal (`broker.portal.authorize`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote_plus

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from broker.db import LazyConnection
from broker.oauth.context import OAuthContext, OAuthHTTPRequest
from broker.web.deps import DbSession, RuntimeDep

# The OpenAPI request body of an endpoint that takes an urlencoded form.
FORM: dict[str, Any] = {
    "application/x-www-form-urlencoded": {
        "schema": {"type": "object", "additionalProperties": {"type": "string"}}
    }
}

# Bounds on a form (python-multipart's defaults are 1000 fields of 1 MiB): an OAuth request has a
# dozen short parameters, a consent answer one per profile field.
MAX_FIELDS, MAX_FIELD_BYTES = 200, 8192


@dataclass(frozen=True)
class FormBody:
    """The urlencoded body as lists of values (OAuth cares about repeated parameters), or why it
    could not be read (too many fields, a field too long): each endpoint answers that in its own terms."""

    values: dict[str, list[str]]
    problem: str | None = None


async def form_values(request: Request) -> FormBody:
    """Read the form once, bounded; a body that breaks the bounds is a problem, not an exception."""
    if request.method != "POST":
        return FormBody({})
    bounds = f"send at most {MAX_FIELDS} fields of at most {MAX_FIELD_BYTES} bytes each"
    if _content_type(request) == "application/x-www-form-urlencoded":
        read, problem = urlencoded(await request.body())
        return FormBody(
            read, None if problem is None else f"the form could not be read ({problem}); {bounds}"
        )
    try:  # multipart: Starlette's parser (no files allowed)
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except HTTPException as exc:  # Starlette's answer to a form over the bounds
        return FormBody({}, f"the form could not be read ({exc.detail}); {bounds}")
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(key, []).append(value)
    return FormBody(values)


def urlencoded(body: bytes) -> tuple[dict[str, list[str]], str | None]:
    """An `application/x-www-form-urlencoded` body as lists of values, or why not: what Starlette's own
    parser (python-multipart's) answers for the same body and bounds, field for field and message for
    message (`tests/broker/web/test_forms.py` compares them), in less of its time: a token request's
    form in 5.5 µs against 18 µs, and Starlette's `request.form()` around its parser cost more (a
    client-credentials token took about 20 µs less in process, of about 470).

    Fields are separated by `&` (empty ones skipped); a field is `name=value` (no `=`: an empty
    value); `+` is a space and %-escapes are UTF-8 (an invalid one becomes U+FFFD)."""
    fields = [field for field in body.split(b"&") if field]
    values: dict[str, list[str]] = {}
    for number, field in enumerate(fields, start=1):
        name, equals, value = field.partition(b"=")
        if len(field) - len(equals) > MAX_FIELD_BYTES:
            return {}, f"Field exceeded maximum size of {MAX_FIELD_BYTES // 1024}KB."
        if number > MAX_FIELDS:
            return {}, f"Too many fields. Maximum number of fields is {MAX_FIELDS}."
        values.setdefault(unquote_plus(name.decode("latin-1")), []).append(
            unquote_plus(value.decode("latin-1"))
        )
    return values, None


def _content_type(request: Request) -> str:
    """The request's media type, lower-cased, without its parameters."""
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


FormValues = Annotated[FormBody, Depends(form_values)]


def query_lists(request: Request) -> dict[str, list[str]]:
    """The query parameters as lists of values."""
    query: dict[str, list[str]] = {}
    if not request.scope.get("query_string"):
        return query  # the usual token request: no query to parse
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    return query


def oauth_request(
    request: Request,
    form: Mapping[str, list[str]],
    db: DbSession | None,
    runtime: RuntimeDep,
    connection: LazyConnection | None = None,
) -> OAuthHTTPRequest:
    """The request as Authlib's server reads it: our issuer's URI, the query and `form`, and this
    request's unit of work `db` and services as its context; a request that only reads has no unit
    of work, only the `connection` its lookups run on (`OAuthContext`)."""
    # From the scope, as Starlette's `request.url` would give them, without building and parsing a URL
    # (a sixth of a client-credentials token's own time went on this function).
    path = request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = request.scope.get("query_string", b"")
    uri = runtime.oauth.issuer + path + (f"?{query.decode('latin-1')}" if query else "")
    ctx = OAuthContext(
        services=runtime.oauth, unit=db, request_id=request.state.request_id, connection=connection
    )
    return OAuthHTTPRequest(
        method=request.method,
        uri=uri,
        headers=request.headers,
        query=query_lists(request),
        form=form,
        ctx=ctx,
    )
