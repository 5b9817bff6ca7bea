"""``pinwarden ct …``: Certificate Transparency commands. Each sub-group lives in its own
module (``ct_check``, ``ct_loglist``, ``ct_log``) and registers on :data:`ct_app`."""

from __future__ import annotations

import typer

from pinwarden.cli._app import app

ct_app = typer.Typer(
    help="Certificate Transparency: verify embedded SCTs and audit the Chrome and Apple CT "
    "policies, manage log lists, read and verify CT logs.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(ct_app, name="ct")
