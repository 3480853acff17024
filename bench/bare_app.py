"""The baseline of every request-speed row: a bare FastAPI JSON endpoint, nothing of ours.

`bench/servers.py` serves it with uvicorn on uvloop + httptools, one worker, as its own process, the
same way `consentry serve` serves the broker. An `async def` endpoint returning a small dict: the
framework's own cost per request (routing, validation-free JSON encoding), no database, no thread hop.
Not a benchmark: `bench/run.py` skips it.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
async def bare() -> dict[str, str]:
    """A constant JSON object, as small as `/healthz`'s."""
    return {"status": "ok"}
