"""The ``pinwarden`` command line. :func:`main` runs it in-process and returns the exit
status, so tests call it directly."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from pinwarden.cli import (  # noqa: F401 - importing registers the commands
    caa,
    check,
    ct,
    ct_check,
    ct_log,
    ct_loglist,
    ct_monitor,
    demo,
    formats,
    headers,
    identify,
    inspect,
    keys,
    lint,
    pin,
    recommend,
    simulate,
)
from pinwarden.cli._app import app
from pinwarden.cli._output import err, printable
from pinwarden.errors import InputError, NetworkError, PinwardenError

__all__ = ["app", "main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    command = typer.main.get_command(app)
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name="pinwarden")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except InputError as exc:
        _one_line("error", exc)
        return 2
    except NetworkError as exc:
        _one_line("could not determine", exc)
        return 3
    except PinwardenError as exc:
        _one_line("error", exc)
        return 2
    return 0


def _one_line(what: str, exc: Exception) -> None:
    message = printable(" ".join(str(exc).split()))
    err().print(f"pinwarden: {what}: {message}", markup=False, soft_wrap=True)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
