"""Known-answer vectors of the transparency log, shared by the server's tests and the auditor's.

`merkle.json` (RFC 9162 hashes and proofs, from transparency-dev/merkle), `note.json` (signed notes,
from golang.org/x/mod/sumdb/note) and `checkpoint.json` (the C2SP example, and checkpoints signed as
Consentry's log signs them). The data is in the JSON files of tests/vectors/; `load` reads one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parents[1] / "vectors"  # tests/vectors/


def load(name: str) -> dict[str, Any]:
    """The vectors of tests/vectors/<name>.json."""
    vectors: dict[str, Any] = json.loads((_HERE / f"{name}.json").read_text(encoding="utf-8"))
    return vectors
