"""What ``pinwarden ct monitor`` reports when it ends: the exit status a summary means and
the summary itself, as a JSON line or as text. Separate from the command so that the
documented JSON and exit rules stand in one short module."""

from __future__ import annotations

import json
import sys
from typing import Any

from pinwarden.cli._output import out, printable
from pinwarden.ct.monitor import MonitorSummary

__all__ = ["exit_status", "show_summary", "summary_json"]


def exit_status(summary: MonitorSummary) -> int:
    """1 when this run found an unexpected certificate or a log misbehaved, else 3 when a log
    could not be read at all, was left to another worker or stopped on this side (state or
    finding files), or an alert is still undelivered (also one queued for a channel not
    given), else 0."""
    if summary.unexpected_new or summary.misbehaving_logs:
        return 1
    if (
        summary.unreachable_logs
        or summary.leased_logs
        or summary.incomplete_logs
        or summary.alerts_pending
        or summary.alerts_stranded
    ):
        return 3
    return 0


def summary_json(summary: MonitorSummary) -> dict[str, Any]:
    """The ``--json`` summary line (docs/json.md, "ct monitor")."""
    return {
        "event": "summary",
        "logs": summary.logs,
        "entries": summary.entries,
        "findings_new": summary.findings_new,
        "unexpected_new": summary.unexpected_new,
        "misbehaving_logs": list(summary.misbehaving_logs),
        "unreachable_logs": list(summary.unreachable_logs),
        "leased_logs": list(summary.leased_logs),
        "incomplete_logs": list(summary.incomplete_logs),
        "alerts_pending": summary.alerts_pending,
        "alerts_stranded": summary.alerts_stranded,
        "exit_status": exit_status(summary),
    }


def show_summary(summary: MonitorSummary, json_: bool) -> None:
    if json_:
        # One line: stdout stays a stream of JSON lines after the alerts.
        sys.stdout.write(json.dumps(summary_json(summary)) + "\n")
        sys.stdout.flush()
        return
    console = out()
    findings = f"{summary.findings_new:,} new finding" + ("" if summary.findings_new == 1 else "s")
    console.print(
        f"ct monitor: {summary.logs:,} logs, {summary.entries:,} entries read, {findings} "
        f"({summary.unexpected_new:,} unexpected)",
        markup=False,
    )
    for title, logs in (
        ("misbehaving logs", summary.misbehaving_logs),
        ("logs that could not be read", summary.unreachable_logs),
        ("logs not read, held by another worker", summary.leased_logs),
        ("logs stopped on this side (state or files; retried next run)", summary.incomplete_logs),
    ):
        if logs:
            console.print(f"  {title}: {', '.join(printable(n) for n in logs)}", markup=False)
    if summary.alerts_pending:
        console.print(
            f"  alerts not delivered yet: {summary.alerts_pending:,} (kept in the state; "
            "retried on the next run)",
            markup=False,
        )
    if summary.alerts_stranded:
        console.print(
            f"  alerts queued for channels not given: {summary.alerts_stranded:,} (not "
            "delivered by this monitor; see the warning on stderr)",
            markup=False,
        )
