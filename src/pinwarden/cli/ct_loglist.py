"""``pinwarden ct loglist show|update``: the CT log lists (Chrome v3, Apple), and the
``--log-list`` loader the other CT commands share (:func:`load_for_cli`)."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from pinwarden.cli._app import JSON_HELP
from pinwarden.cli._common import check_timeout, parse_when
from pinwarden.cli._output import emit_json, err, out, printable
from pinwarden.cli.ct import ct_app
from pinwarden.ct.loglist import (
    APPLE_LOG_LIST_URL,
    CHROME_LOG_LIST_URL,
    cache_path,
    default_log_list,
    load_log_list,
    log_to_json,
    published_signature_url,
    staleness_warning,
)
from pinwarden.ct.logs import Log, LogList
from pinwarden.errors import InputError, LogListError

__all__ = ["LOG_LIST_HELP", "ListKind", "load_for_cli", "loglist_app"]

loglist_app = typer.Typer(
    help="CT log lists (Chrome v3, Apple): show one, or download, verify and cache one.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
ct_app.add_typer(loglist_app, name="loglist")

LOG_LIST_HELP = (
    "CT log list: a file or an http(s) URL (Chrome v3 or Apple JSON); default: the list "
    "cached by `pinwarden ct loglist update`."
)


class ListKind(str, Enum):
    """Whose log list: Chrome's v3 list or Apple's."""

    CHROME = "chrome"
    APPLE = "apple"


_DEFAULT_URL = {ListKind.CHROME: CHROME_LOG_LIST_URL, ListKind.APPLE: APPLE_LOG_LIST_URL}
_STATE_STYLE = {
    "usable": "green",
    "qualified": "green",
    "readonly": "yellow",
    "pending": "dim",
    "retired": "red",
    "rejected": "red",
}


def load_for_cli(
    value: str | None,
    now: dt.datetime,
    *,
    kind: str | None = None,
    at: dt.datetime | None = None,
) -> LogList:
    """The list a ``--log-list`` option names: a file, an http(s) URL (downloaded, verified
    when it is Chrome's, cached), or with None the cached list of ``kind`` (Chrome's by
    default). ``now`` is the clock (a download's fetch time); the staleness warning is
    printed on stderr when the list is too old at ``at`` (default ``now``)."""
    if value is None:
        loglist = default_log_list(now, kind=kind or "chrome")
    else:
        loglist = load_log_list(value, now=now, kind=kind)
    warning = staleness_warning(loglist, at or now)
    if warning is not None:
        _warn(warning)
    return loglist


def _warn(message: str) -> None:
    err().print(f"pinwarden: warning: {escape(printable(message))}", soft_wrap=True)


def _shown(text: str) -> str:
    """Outside text (a log list is outside data) safe for rich and the terminal."""
    return escape(printable(text))


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "unknown"
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- show --------------------------------------------------------------------------------


def _list_json(loglist: LogList, at: dt.datetime, warning: str | None) -> dict[str, Any]:
    return {
        "source": loglist.source,
        "kind": loglist.kind,
        "version": loglist.version,
        "timestamp": _iso(loglist.timestamp),
        "fetched_at": _iso(loglist.fetched_at),
        "at": _iso(at),
        "warning": warning,
        "operators": [
            {
                "name": name,
                "logs": [log_to_json(log) for log in loglist.logs if log.operator == name],
            }
            for name in loglist.operators
        ],
    }


def _show_log(log: Log) -> None:
    console = out()
    console.print(f"  [bold]{_shown(log.description)}[/bold]")
    pad = "      "
    if log.state is None:
        state = "[dim]no state given[/dim]"
    else:
        style = _STATE_STYLE.get(log.state.value, "")
        state = f"[{style}]{log.state.value}[/{style}] since {_when(log.state_since)}"
    if log.final_tree_head is not None:
        state += f" (final tree: {log.final_tree_head.tree_size} entries)"
    console.print(f"{pad}state       {state}")
    if log.tiled:
        console.print(f"{pad}api         static-ct-api")
        console.print(f"{pad}submission  {_shown(log.submission_url or '')}")
        console.print(f"{pad}monitoring  {_shown(log.monitoring_url or '')}")
    else:
        console.print(f"{pad}api         rfc6962")
        console.print(f"{pad}url         {_shown(log.url or '')}")
    console.print(f"{pad}mmd         {log.mmd} s")
    if log.temporal_interval is not None:
        start, end = log.temporal_interval
        console.print(
            f"{pad}accepts     certificates expiring from {_when(start)} to before {_when(end)}"
        )
    for previous in log.previous_operators:
        console.print(f"{pad}operated by {_shown(previous.name)} until {_when(previous.end_time)}")
    if log.log_type is not None:
        console.print(f"{pad}type        {_shown(log.log_type)}")
    console.print(f"{pad}log id      {log.log_id_b64}")


def _show_list(loglist: LogList) -> None:
    console = out()
    title = "Chrome" if loglist.kind == "chrome" else "Apple"
    version = f" version {_shown(loglist.version)}" if loglist.version else ""
    console.print(f"[bold]{title} CT log list{version}[/bold]")
    console.print(f"source      {_shown(loglist.source)}")
    if loglist.timestamp is not None:
        console.print(f"published   {_when(loglist.timestamp)}")
    if loglist.fetched_at is not None:
        console.print(f"downloaded  {_when(loglist.fetched_at)}")
    console.print(f"{len(loglist.logs)} logs from {len(loglist.operators)} operators")
    for name in loglist.operators:
        console.print(f"\n[bold]{_shown(name)}[/bold]")
        for log in loglist.logs:
            if log.operator == name:
                _show_log(log)


@loglist_app.command("show")
def show_command(
    log_list: Annotated[
        str | None, typer.Option("--log-list", metavar="FILE|URL", help=LOG_LIST_HELP)
    ] = None,
    kind: Annotated[
        ListKind | None,
        typer.Option(
            help="Read the list as this kind (default: detected) and, without --log-list, "
            "show the cached list of this kind (default: chrome)."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help="Judge the list's age at this date (ISO 8601); default: now."
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the operators and logs of a CT log list: state and since when, API (RFC 6962 or
    static-ct-api), URLs, MMD, accepted expiry range, log ID.

    Warns on stderr when the list is more than 70 days old: Chrome stops enforcing CT with a
    list that old, and log states may have changed.
    """
    now = dt.datetime.now(dt.timezone.utc)
    when = parse_when(at) if at is not None else now
    loglist = load_for_cli(log_list, now, kind=kind.value if kind else None, at=when)
    if json_:
        emit_json(_list_json(loglist, when, staleness_warning(loglist, when)))
        return
    _show_list(loglist)


# -- update ------------------------------------------------------------------------------


@loglist_app.command("update")
def update_command(
    kind: Annotated[ListKind, typer.Option(help="Which list to download.")] = ListKind.CHROME,
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Download from here instead (default: Chrome's v3 log_list.json, or "
            "Apple's current_log_list.json with --kind apple).",
        ),
    ] = None,
    signature_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The list's detached signature (RSA PKCS#1 v1.5 SHA-256); default: "
            "log_list.sig beside Chrome's own list, none for other lists.",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Verify the signature with this key (PEM or DER); default: Google's "
            "log-list key, built in.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds for each download.")] = 30.0,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Download a CT log list, verify it and cache it for the other CT commands.

    Chrome's list is checked against Google's signature (`log_list.sig`) with Google's key
    built into pinwarden; Apple publishes no signature, so its list rests on HTTPS alone.
    A list that fails its signature or any field check is not cached. The cache is
    `$XDG_CACHE_HOME/pinwarden/ct` (`~/.cache/pinwarden/ct`).
    """
    check_timeout(timeout)
    source = url or _DEFAULT_URL[kind]
    signature = signature_url or published_signature_url(source)
    if public_key is not None and signature is None:
        raise InputError("--public-key needs a signature to check: give --signature-url")
    key = None
    if public_key is not None:
        try:
            key = public_key.read_bytes()
        except OSError as exc:
            raise LogListError(f"{public_key}: {exc.strerror or exc}") from None
    now = dt.datetime.now(dt.timezone.utc)
    loglist = load_log_list(
        source, now=now, kind=kind.value, signature=signature, public_key=key, timeout=timeout
    )
    path = cache_path(loglist.kind)
    warning = staleness_warning(loglist, now)
    if json_:
        emit_json(
            {
                "kind": loglist.kind,
                "url": source,
                "signature_url": signature,
                "signature_verified": signature is not None,
                "cache": str(path),
                "fetched_at": _iso(loglist.fetched_at),
                "version": loglist.version,
                "timestamp": _iso(loglist.timestamp),
                "logs": len(loglist.logs),
                "operators": len(loglist.operators),
                "warning": warning,
            }
        )
    else:
        console = out()
        version = f" version {_shown(loglist.version)}" if loglist.version else ""
        console.print(
            f"Downloaded the {loglist.kind.capitalize()} CT log list{version}: "
            f"{len(loglist.logs)} logs from {len(loglist.operators)} operators"
        )
        console.print(f"from        {_shown(source)}")
        if signature is not None:
            whose = "the given key" if key is not None else "Google's log-list key"
            console.print(f"signature   [green]verified[/green] ({_shown(signature)}, {whose})")
        else:
            console.print("signature   [yellow]none published[/yellow] (trusting HTTPS only)")
        console.print(f"cached in   {_shown(str(path))}")
    if warning is not None:
        _warn(warning)
