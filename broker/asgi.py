"""The ASGI entry point uvicorn imports: `create` builds the app from the environment's settings.

`consentry serve` passes `broker.asgi:create` as a factory, so every worker process builds its own
app, runtime (engine, pool, group committer) and nothing is shared across a fork. `app` is for
running uvicorn (or another ASGI server) by hand: it builds the app when first asked for.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from broker import allocator, logs
from broker.app import create_app


def create() -> FastAPI:
    """A new app, built from `Settings()` (the environment): one per worker process, which keeps to a
    few malloc arenas (`broker.allocator`) and sends its log to stderr in batches (`broker.logs`)."""
    allocator.limit_arenas()
    logs.configure()
    return create_app()


def __getattr__(name: str) -> Any:
    """`broker.asgi:app`: the app, built on first access (importing the module builds nothing)."""
    if name == "app":
        built = globals()["app"] = create()
        return built
    raise AttributeError(name)
