"""Print the OpenAPI document of the app (``python -m broker.openapi > openapi/openapi.json``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from broker.app import create_app
from broker.settings import Settings


def generate() -> dict[str, Any]:
    """The app's OpenAPI document, built without touching any real database or key."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/spec.db", key_provider="file")
        spec: dict[str, Any] = create_app(settings, check_schema=False).openapi()
        return spec


def render() -> str:
    """The document as committed: indented, keys in a stable order, newline-terminated."""
    return json.dumps(generate(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
