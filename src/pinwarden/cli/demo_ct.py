"""The demo's last step: the alternatives to pinning, Certificate Transparency first.

A certificate with embedded SCTs is audited against the browsers' CT policies, and a CT
monitor reading a real local log finds the rogue certificate of the demo's
man-in-the-middle: a certificate for our name with a key we never pinned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from pinwarden.ct.alerts import AlertEvent
from pinwarden.ct.monitor import Monitor, MonitorConfig
from pinwarden.ct.policy import audit_apple, audit_chrome
from pinwarden.ct.sct import verify_embedded
from pinwarden.ct.watch import WatchList
from pinwarden.pins import Pin
from pinwarden.testing import CA, Issued, LocalCTLog, TestLog, issue_with_scts, log_list_of

__all__ = ["ct_step"]


@dataclass
class _Collect:
    """An alert channel that keeps what it is given, for the demo to show."""

    events: list[AlertEvent] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "demo"

    async def deliver(self, event: AlertEvent) -> None:
        self.events.append(event)


def ct_step(
    console: Console,
    expect: Callable[[str, bool], None],
    issuing: CA,
    host: str,
    pins: tuple[Pin, ...],
    rogue: Issued,
    now: dt.datetime,
) -> None:
    """Audit a certificate's SCTs, then monitor a log into which ``rogue`` was logged."""
    console.rule("5. the alternatives: Certificate Transparency")
    console.print(
        "Browsers only accept certificates that were logged publicly: the CA submits a "
        "precertificate to CT logs and embeds their signed promises (SCTs)."
    )
    logs = [TestLog("Demo Log A", operator="Operator A"), TestLog("Demo Log B", operator="B")]
    issued = issue_with_scts(issuing, host, logs, days=90)
    log_list = log_list_of(logs)
    results = verify_embedded(issued.cert, issuing.cert, log_list, now)
    chrome = audit_chrome(issued.cert, results, log_list, now)
    apple = audit_apple(issued.cert, results, log_list, now)
    expect(
        f"pinwarden ct check: {sum(r.valid for r in results)} valid SCTs; "
        f"{chrome.summary}; {apple.summary}",
        all(r.valid for r in results) and chrome.compliant is True and apple.compliant is True,
    )

    console.print(
        "\nSo the rogue certificate from step 4 had to be logged too — if a public CA issued "
        "it. A CT monitor reads the logs and checks every certificate for our names "
        "against what we expect (here: our pinned keys)."
    )
    channel = _Collect()
    with LocalCTLog("static", ca=issuing) as log, tempfile.TemporaryDirectory() as tmp:
        log.grow(500)
        log.add_certificate(issued)
        log.add_certificate(rogue)
        log.grow(100)
        log.publish()
        # Our keys: the one this certificate uses, and the backup.
        ours = ",".join(str(pin) for pin in (issued.pin, *pins))
        watch = WatchList.parse(f".{host.split('.', 1)[1]} pins={ours}")
        config = MonitorConfig(
            watch=watch,
            log_list=log.log_list(),
            store_url=f"sqlite:///{Path(tmp) / 'monitor.sqlite3'}",
            start="start",
            once=True,
            channels=(channel,),
            output_dir=Path(tmp) / "certs",
        )
        summary = asyncio.run(Monitor(config).run())
    verdicts = {
        str(event.payload.get("issuer")): str(event.payload.get("verdict"))
        for event in channel.events
    }
    for issuer, verdict in verdicts.items():
        console.print(f"  {verdict.upper():<10} certificate for {host} from {escape(issuer)}")
    expect(
        f"pinwarden ct monitor read {summary.entries} entries, verified against the signed "
        "tree head, and flagged the rogue certificate as unexpected",
        summary.entries == 602
        and verdicts.get(rogue.cert.issuer.rfc4514_string()) == "unexpected"
        and list(verdicts.values()).count("expected") == 1,
    )
