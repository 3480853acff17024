"""Route lookup without trying every router: each included router is asked only about paths it can
answer.

FastAPI (0.165) keeps an included router as one entry of the app's routes and, for every request,
asks each entry in turn whether it matches; an included router answers by trying each of its own
routes' regular expressions (with some bookkeeping of its own around each try), and the router that
matches tries them all again to pick one. A portal page, whose router is the 22nd, paid about 170 µs
of CPU for that alone on the development machine, as much as reading its session.

`index_routes` gives each included router a guard: the static beginnings of its routes' paths (what
comes before the first `{`). A path that starts with none of them cannot match any of its routes, so
the router is passed over without being asked. The guard never changes which route answers: a route
matches only paths that begin with its static part, so a router passed over would have answered
"no match" anyway (the test compares the two lookups for every route). Routers whose paths cannot be
read (a FastAPI whose internals moved on) are left unguarded: slower, never wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

__all__ = ["index_routes"]

log = logging.getLogger("consentry.routing")

try:  # a private class: the guard is an optimisation, so its absence only costs speed
    from fastapi.routing import _IncludedRouter
except ImportError:  # pragma: no cover - a FastAPI without it
    _IncludedRouter = None  # type: ignore[assignment,misc]

Matcher = Callable[[Scope], tuple[Match, Scope]]


def index_routes(app: FastAPI) -> int:
    """Guard each included router of `app` by the static beginnings of its paths; the number guarded.
    Call it once every router is included (a router included later is simply not guarded)."""
    if _IncludedRouter is None:  # pragma: no cover
        log.warning("FastAPI has no _IncludedRouter: routes are looked up unguarded")
        return 0
    guarded = 0
    for route in app.router.routes:
        if not isinstance(route, _IncludedRouter):
            continue
        beginnings = _beginnings(route)
        if beginnings is None:
            log.warning("an included router's paths could not be read: it is asked about every path")
            continue
        route.matches = _guarded(route.matches, beginnings)  # type: ignore[method-assign,assignment]
        guarded += 1
    return guarded


def _beginnings(included: Any) -> tuple[str, ...] | None:
    """What every path of this router's routes starts with (None: a route whose path is unknown)."""
    found: list[str] = []
    for candidate in included.effective_candidates():
        if isinstance(candidate, _IncludedRouter):
            nested = _beginnings(candidate)
            if nested is None:
                return None
            found.extend(nested)
            continue
        # An API route's context carries its full path; a plain route's (or a mount's) is its
        # Starlette route's, built with the include prefix.
        route = getattr(candidate, "starlette_route", None) or getattr(candidate, "original_route", None)
        path = getattr(candidate, "path", None) or getattr(route, "path", None)
        if not isinstance(path, str) or not path.startswith("/"):
            return None
        found.append(path.split("{", 1)[0])
    return tuple(dict.fromkeys(found))


def _guarded(matches: Matcher, beginnings: tuple[str, ...]) -> Matcher:
    def guarded(scope: Scope) -> tuple[Match, Scope]:
        # `get_route_path`: the path below the app's root_path, as the routes themselves see it.
        if scope["type"] in ("http", "websocket") and not get_route_path(scope).startswith(beginnings):
            return Match.NONE, {}
        return matches(scope)

    return guarded
