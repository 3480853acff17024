"""The ASGI entry point uvicorn imports: the app built from the environment's settings."""

from __future__ import annotations

from broker.app import create_app

app = create_app()
