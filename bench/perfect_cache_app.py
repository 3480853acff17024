"""An instrument, not a product path: the broker's app with the dashboard's work replaced by a perfect
cache, for `bench/ceilings.py`.

`GET /portal/` keeps everything a cached dashboard could not skip: the server, the middleware (request
id, security headers, body limit), the route, the request thread and the session check (the cookie's
session read from the database: revoked, expired or idle is refused). What a cache would save is gone:
the page's queries, views and rendering. The answer is `CONSENTRY_PERFECT_CACHE_BYTES` bytes, the size
of the real page, so the response costs what the real one does to send. No stamp is read, so this is
an upper bound on any cache that must check one. Not a benchmark: `bench/run.py` skips it.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

import broker.portal.grants as dashboard
import broker.portal.views as views
from broker.asgi import create

_PAGE = b"x" * int(os.environ.get("CONSENTRY_PERFECT_CACHE_BYTES", "12000"))


def _nothing(*_: Any, **__: Any) -> dict[str, Any]:
    return {}


def _cached(request: Request, template: str, context: dict[str, Any], **_: Any) -> Response:
    return HTMLResponse(_PAGE)


setattr(views, "overview", _nothing)  # noqa: B010 - replaced for this instrument only
setattr(dashboard, "render", _cached)  # noqa: B010
app = create()
