"""``pinwarden headers URL``: find the obsolete HPKP and Expect-CT headers a site sends."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from pinwarden.apps.headers import ADVICE, HeadersReport, ObsoleteHeader, fetch_headers
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._common import check_timeout
from pinwarden.cli._output import emit_json, err, out, printable

# A header value is outside data: shown escaped and cut, in full only in --json.
_SHOWN = 300


def _safe(text: str) -> str:
    shown = printable(text)
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + f"… ({len(text)} characters)"
    return escape(shown)


def _show_header(header: ObsoleteHeader) -> None:
    console = out()
    state = "[red]malformed[/red]" if header.malformed else "well formed"
    console.print(
        f"\n[bold]{header.name}[/bold] ({state}) — removed from browsers in {header.removed}"
    )
    console.print(f"  value        {_safe(header.value)}")
    for pin in header.pins:
        console.print(f"  pin          {pin}")
    if header.max_age is not None:
        days = header.max_age / 86400
        console.print(
            f"  max-age      {header.max_age} s ({days:.4g} day{'' if days == 1 else 's'})"
        )
    # Without directives (unparsable or empty) there is no flag to show as absent.
    if header.directives and header.name != "Expect-CT":
        console.print(f"  subdomains   {'yes' if header.include_subdomains else 'no'}")
    elif header.directives:
        console.print(f"  enforce      {'yes' if header.enforce else 'no (report only)'}")
    if header.report_uri is not None:
        console.print(f"  report-uri   {_safe(header.report_uri)}")
    for problem in header.problems:
        console.print(f"  [red]problem[/red]      {_safe(problem)}")
    for warning in header.warnings:
        console.print(f"  [yellow]warning[/yellow]      {_safe(warning)}")


def _show_notes(report: HeadersReport) -> None:
    for note in report.notes:
        err().print(f"pinwarden: note: {_safe(note)}", soft_wrap=True)


def _show(report: HeadersReport) -> None:
    console = out()
    console.print(f"[bold]{_safe(report.final_url)}[/bold]: HTTP {report.status}")
    for hop in report.redirects:
        console.print(f"  redirected from {_safe(hop)}")
    if report.redirect is not None and report.notes:
        console.print(f"  redirects to {_safe(report.redirect)} (not followed, see below)")
    elif report.redirect is not None:
        console.print(
            f"  redirects to {_safe(report.redirect)} (not followed; use --follow to check "
            "where it leads)"
        )
    if not report.found:
        console.print(
            "\nNo Public-Key-Pins, Public-Key-Pins-Report-Only or Expect-CT header: nothing "
            "obsolete to remove."
        )
        return
    seen_on = {h.url for h in report.headers}
    for header in report.headers:
        if len(seen_on) > 1:
            console.print(f"\n(on the response of {_safe(header.url)})")
        _show_header(header)
    console.print("\n[bold]What to do instead[/bold]")
    for line in ADVICE:
        console.print(f"  - {escape(line)}")


@app.command("headers")
def headers_command(
    url: Annotated[str, typer.Argument(metavar="URL", help="Page to fetch (https:// is assumed).")],
    follow: Annotated[
        bool, typer.Option("--follow", help="Follow redirects and check every response.")
    ] = False,
    cafile: Annotated[
        str | None, typer.Option(help="Trust store (PEM); default: the system store.")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds for the whole fetch, redirects included.")
    ] = 10.0,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Report obsolete pinning headers: Public-Key-Pins (-Report-Only) and Expect-CT.

    Browsers removed them (HPKP in Chrome 72 and Firefox 72, Expect-CT in Chrome 107).
    Each one found is parsed into its directives and explained, with what to do instead:
    browsers enforce CT anyway, monitor CT (`pinwarden ct monitor`), publish CAA
    (`pinwarden caa generate`). Redirects are reported, followed only with --follow (never
    to anything but http or https). Over plain http the headers are reported with a warning:
    browsers ignored them there. The certificate is verified as usual; --cafile replaces
    the system store.

    Exit 0 when none is sent, 1 when any is, 2 for a bad URL, 3 when no response came.
    """
    check_timeout(timeout)
    report = fetch_headers(url, cafile=cafile, timeout=timeout, follow=follow)
    if json_:
        emit_json(report.to_json())
    else:
        _show(report)
    _show_notes(report)
    if report.found:
        raise typer.Exit(1)
