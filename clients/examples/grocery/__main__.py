"""`python -m clients.examples.grocery`: serve Fresh Basket with the demo brand's credentials."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

import clients.brand
from clients.examples.grocery.app import GroceryConfig, create_app

cli = typer.Typer(add_completion=False)


def _print_version(asked: bool) -> None:
    if asked:
        try:
            release = version("consentry-example-grocery")
        except PackageNotFoundError:  # run from a source tree that was never installed
            release = "0+unknown"
        typer.echo(f"consentry-example-grocery {release} (on consentry-brand {clients.brand.__version__})")
        raise typer.Exit()


@cli.command()
def serve(
    credentials: Annotated[Path, typer.Option(help="the JSON `consentry demo` prints")],
    broker_url: Annotated[str, typer.Option(help="the broker's public base URL")] = "http://127.0.0.1:8000",
    host: str = "127.0.0.1",
    port: int = 8001,
    show_version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Serve the example brand app; shoppers connect it to the broker at `broker_url`."""
    demo = json.loads(credentials.read_text())
    config = GroceryConfig(
        broker_url=broker_url,
        client_id=demo["brand"]["client_id"],
        client_secret=demo["brand"]["client_secret"],
        redirect_uri=demo["brand"]["redirect_uri"],
        offer_id=demo["offer"]["id"],
    )
    typer.echo(f"Fresh Basket on http://{host}:{port}/ (broker {broker_url})")
    uvicorn.run(create_app(config), host=host, port=port, access_log=False)


if __name__ == "__main__":
    cli()
