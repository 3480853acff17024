"""`python -m clients.brand --version`: the SDK's release and the Consentry API versions it speaks.

`python -m clients.brand check URL` fetches a broker's discovery metadata and says whether this SDK can
talk to it (exit code 0), or why not (1), before any code of yours runs against it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from clients.brand.client import ConsentryClient
from clients.brand.errors import ConsentryError
from clients.brand.versions import API_VERSIONS, DISTRIBUTION, RELEASE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.brand", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command")
    check = commands.add_parser("check", help="can this SDK talk to the broker at URL?")
    check.add_argument("url", help="the broker's issuer URL, e.g. https://consentry.example")
    args = parser.parse_args(argv)
    if args.command != "check":
        parser.print_help()
        return 2
    try:
        with ConsentryClient(args.url, client_id="-") as client:
            metadata = client.discover()
    except ConsentryError as error:
        print(f"no: {error}", file=sys.stderr)
        return 1
    print(f"yes: {metadata.issuer} serves Consentry API {', '.join(metadata.consentry_api_versions)}")
    return 0


def _version() -> str:
    return f"{DISTRIBUTION} {RELEASE} (speaks Consentry API {', '.join(API_VERSIONS)})"


if __name__ == "__main__":
    sys.exit(main())
