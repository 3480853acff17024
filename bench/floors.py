"""What the framework and the libraries allow: issue 17's audited read and token at their floor.

`floor_app.py` does the least work each must do with the libraries the broker uses (FastAPI,
joserfc, cryptography, SQLite; Authlib for the token) and none of the broker's own layers: no
middleware, no ORM, no Merkle tree, no vault key unwrap. Its rates against the bare FastAPI baseline
are ceilings for the two >= 0.3x rows: above the goal, the gap is the broker's own; below it, the
goal is out of this stack's reach. Served like the baseline (uvicorn, uvloop + httptools, one
worker), measured with the same lean client (`common.http_rate`) in alternating rounds (the best of
each). SQLite only: the floor's database is its own temporary file.

Usage: python bench/floors.py [--seconds S] [--rounds N] [--concurrency C] [--json PATH] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse
import tempfile

import httpx
from common import HttpRequest, Row, best, finish, http_rate, parse
from floor_app import CLIENT_ID, SECRET, access_token
from read import GOALS
from servers import bare_baseline, uvicorn_app


def _check_instrument(base: str, token: str) -> None:
    """The floor answers as a broker would: the decrypted profile, a signed token; else no figure."""
    read = httpx.get(base + "/profile", headers={"Authorization": f"Bearer {token}"})
    read.raise_for_status()
    assert read.json()["given_name"] == "Ada", read.text
    form = {"grant_type": "client_credentials", "scope": "offers:read"}
    issued = httpx.post(base + "/oauth/token", data=form, auth=(CLIENT_ID, SECRET))
    issued.raise_for_status()
    assert issued.json()["access_token"].count(".") == 2, issued.text


def main() -> int:
    """Start the baseline and the floor, measure both requests, report them as ceilings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parse(parser, quick={"seconds": 0.5, "rounds": 1, "concurrency": 4})
    token = access_token()
    bare_json = HttpRequest("GET", "/json")
    read = HttpRequest("GET", "/profile", bearer=token)
    issue = HttpRequest("POST", "/oauth/token", basic=(CLIENT_ID, SECRET),
                        form={"grant_type": "client_credentials", "scope": "offers:read"})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        with (
            bare_baseline(logs / "bare.log") as bare,
            uvicorn_app("floor_app:app", logs / "floor.log", ready="/docs") as floor,
        ):
            _check_instrument(floor, token)

            def rate(base: str, request: HttpRequest) -> float:
                return http_rate(base, request, seconds=args.seconds, concurrency=args.concurrency)

            for base, request in ((bare, bare_json), (floor, read), (floor, issue)):
                http_rate(base, request, seconds=min(args.seconds, 1.0), concurrency=args.concurrency)
            baseline = best(lambda: rate(bare, bare_json), args.rounds)
            reads = best(lambda: rate(floor, read), args.rounds)
            tokens = best(lambda: rate(floor, issue), args.rounds)
    rows = [
        Row("audited read at its floor (cached claims, a SELECT, AES-GCM, group commit), vs bare FastAPI",
            reads, baseline, "req/s", f"reported: ceiling of the >= {GOALS['profile']}x row"),
        Row("client-credentials token at its floor (Authlib, joserfc Ed25519, no database), vs bare FastAPI",
            tokens, baseline, "req/s", f"reported: ceiling of the >= {GOALS['token']}x row"),
    ]  # fmt: skip
    return finish(rows, args)


if __name__ == "__main__":
    sys.exit(main())
