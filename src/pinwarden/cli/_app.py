"""The Typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="pinwarden",
    help=(
        "TLS trust tooling: pin safely, manage pins for apps, and use the alternatives.\n\n"
        "Exit status: 0 ok, 1 a finding (pin mismatch, verification failure), "
        "2 usage or input error, 3 could not determine (network/DNS failure)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        from pinwarden import __version__

        typer.echo(f"pinwarden {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """TLS trust tooling: pin safely, manage pins for apps, and use the alternatives."""


JSON_HELP = "Print the documented JSON (docs/json.md) instead of text."
