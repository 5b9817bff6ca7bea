"""One verified batch of a log, committed (:func:`commit`): its entries matched against the
watch list, the matches judged, their certificate files written, and the batch committed
with its findings and their alerts in one transaction.

Separate from :mod:`pinwarden.ct.follow` because this is the monitor's per-batch hot path
(the session around it only chooses which batches to read).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pinwarden.ct._alert_text import EVENT_DISCOVERED
from pinwarden.ct._follow_state import Context, FilesError, LogTrack
from pinwarden.ct._http import HTTPStatusError
from pinwarden.ct.dispatch import in_thread
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.findings import build_finding, write_files
from pinwarden.ct.reader import VerifiedBatch
from pinwarden.ct.static import StaticClient
from pinwarden.ct.store import Finding, OutboxEvent, Store, StoredTreeHead
from pinwarden.ct.verdicts import UNEXPECTED, names_in_unreadable
from pinwarden.ct.watch import WatchList, WatchMatch

# An unreadable entry bigger than this is searched for names (and matched) in a worker
# thread: a log entry may be 16 MiB, and the event loop serves every log.
_INLINE_SCAN_BYTES = 1 << 16
_ISSUER_CACHE = 64


async def commit(ctx: Context, track: LogTrack, batch: VerifiedBatch, target: int) -> None:
    log = track.log
    watch = ctx.watch
    hits: list[tuple[LogEntry, tuple[WatchMatch, ...]]] = []
    # The hot loop: names were read when the entry was parsed; most entries match nothing.
    for entry in batch.entries:
        names = entry.dns_names
        if names:
            # Both spellings: IDNA 2003 maps some Unicode names (faß) where 2008 does not.
            found = watch.matches(names, entry.unicode_names)
        elif entry.error is not None:
            if len(entry.tbs_der) > _INLINE_SCAN_BYTES:
                found = await in_thread(_match_unreadable, watch, entry)
            else:
                found = _match_unreadable(watch, entry)
        else:
            continue
        if found:
            hits.append((entry, found))
    if hits:
        await _complete_chains(track, hits)
    now = ctx.clock()
    findings: list[Finding] = []
    events: list[OutboxEvent] = []
    files: list[tuple[Finding, dict[str, Any]]] = []
    # Concurrently: ca=caa expectations wait on DNS (the judge bounds the lookups).
    judgements = await asyncio.gather(*(ctx.judge.judge(e, f, now) for e, f in hits))
    for (entry, found), judgement in zip(hits, judgements, strict=True):
        finding, payload = build_finding(
            entry,
            found,
            judgement,
            output_dir=ctx.output_dir,
            log_name=track.name,
            log_id=log.log_id_b64,
        )
        findings.append(finding)
        files.append((finding, payload))
        if ctx.channels:
            events.append(
                OutboxEvent(EVENT_DISCOVERED, payload, ctx.channels, finding.tbs_hash, log.log_id)
            )
    state = batch.state
    committing = asyncio.ensure_future(
        asyncio.to_thread(
            _write_and_commit,
            ctx.store,
            files,
            log.log_id,
            state.position,
            track.stored_head(state.head),
            state.compact_range,
            findings,
            events,
            ctx.worker_id,
            now,
        )
    )
    try:
        new, unwritten = await asyncio.shield(committing)
    except asyncio.CancelledError:
        # The commit goes on in its thread whatever happens here (its outcome is never
        # unknown); once it is done, count what it committed, then let the stop go on.
        with contextlib.suppress(Exception):
            new, unwritten = await committing
            _record(ctx, track, batch, target, findings, events, new, unwritten)
        raise
    _record(ctx, track, batch, target, findings, events, new, unwritten)


def _record(
    ctx: Context,
    track: LogTrack,
    batch: VerifiedBatch,
    target: int,
    findings: list[Finding],
    events: list[OutboxEvent],
    new: Sequence[Finding],
    unwritten: str,
) -> None:
    """Tell the tally and the observer what a commit did."""
    log = track.log
    if unwritten:
        ctx.observer.log_error(log, "files", unwritten)
    tally = ctx.tally
    tally.entries += len(batch.entries)
    new_hashes = {f.tbs_hash for f in new}
    tally.findings_new += len(new)
    tally.unexpected_new += sum(1 for f in new if f.verdict == UNEXPECTED)
    ctx.observer.batch_done(log, batch.state.position, target, len(batch.entries))
    for finding in findings:
        ctx.observer.finding(log, finding.verdict, finding.tbs_hash in new_hashes)
    if new and events:
        ctx.wake()


def _match_unreadable(watch: WatchList, entry: LogEntry) -> tuple[WatchMatch, ...]:
    return watch.matches(names_in_unreadable(entry))


async def _complete_chains(
    track: LogTrack, hits: list[tuple[LogEntry, tuple[WatchMatch, ...]]]
) -> None:
    """Give the x509 entries of a static log that a CA expectation will judge their
    issuing certificate (a data tile holds only its fingerprint): the judge recognises
    an issuer by its key, checked against that certificate. A log that does not have it
    (a 404) leaves the entry without one: its issuer is then unproven, never assumed."""
    client = track.reader.client if track.reader is not None else None
    if not isinstance(client, StaticClient):
        return
    for position, (entry, found) in enumerate(hits):
        if entry.is_precert or entry.chain_der or not entry.chain_fingerprints:
            continue
        if entry.error is not None or not any(m.item.cas or m.item.ca_from_caa for m in found):
            continue
        fingerprint = entry.chain_fingerprints[0]
        der = track.issuers.get(fingerprint)
        if der is None:
            try:
                der = await client.issuer(fingerprint)  # checked against the fingerprint
            except HTTPStatusError:
                continue
            if len(track.issuers) >= _ISSUER_CACHE:
                track.issuers.clear()
            track.issuers[fingerprint] = der
        hits[position] = (replace(entry, chain_der=(der,)), found)


def _write_and_commit(
    store: Store,
    files: Sequence[tuple[Finding, dict[str, Any]]],
    log_id: bytes,
    position: int,
    head: StoredTreeHead,
    compact: bytes,
    findings: Sequence[Finding],
    events: Sequence[OutboxEvent],
    worker_id: str,
    now: datetime,
) -> tuple[tuple[Finding, ...], str]:
    """Commit the batch; the findings new in it, and why some of their files could not be
    rewritten after the commit ("" when all were)."""
    # Files first: an alert committed with the batch may name them. Only where absent: a
    # certificate seen before keeps the files its alert described.
    kept: set[bytes] = set()
    try:
        for finding, payload in files:
            if not write_files(finding, payload):
                kept.add(finding.tbs_hash)
    except OSError as exc:
        raise FilesError(f"cannot write the certificate files: {exc}") from exc
    new = store.commit_batch(
        log_id, position, head, compact, findings, events, worker_id=worker_id, now=now
    )
    # A finding new in this commit whose files were already there (written by a batch
    # that crashed before its commit): make them say what the committed alert says.
    pending = {finding.tbs_hash for finding in new} & kept
    try:
        for finding, payload in files:
            if finding.tbs_hash in pending:
                pending.discard(finding.tbs_hash)  # the first of several is the one stored
                write_files(finding, payload, replace=True)
    except OSError as exc:
        return new, f"cannot rewrite the certificate files of a new finding: {exc}"
    return new, ""
