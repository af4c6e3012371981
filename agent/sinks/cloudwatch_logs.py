"""CloudWatch Logs sink: reports go to an on-disk spool first, then out by PutLogEvents.

Nothing is lost when CloudWatch is unreachable: :meth:`CloudWatchLogsSink.emit` appends the
report to an ordered spool file (fsync'd) and then tries to send everything unsent. A send that
fails leaves the spool as it was and backs off; the next emit or flush (or the next process: the
spool and its cursor live in ``spool_dir``) sends it, in order. The spool is bounded
(``spool_max_bytes``): beyond it the oldest unsent reports are dropped and counted, and the
count survives restarts (``dropped`` in the state file, also exposed as :attr:`dropped`).

Delivery is at least once: the cursor is written after PutLogEvents succeeds, so a crash in that
window resends one batch. Every other path delivers each report exactly once.

PutLogEvents constraints (CloudWatch Logs API reference, PutLogEvents, checked 2025): a batch is
at most 1,048,576 bytes counting each message's UTF-8 bytes plus 26 bytes per event, at most
10,000 events, in chronological order, spanning at most 24 hours; events more than 14 days old
or 2 hours in the future are rejected; the sequence token is ignored. The per-event limit is
256 KB in older documentation and 1 MB in newer; the smaller is used.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from s3_route_agent.report.document import Report
from s3_route_agent.sinks.base import Sink
from s3_route_agent.statefile import replace_file

logger = logging.getLogger(__name__)

MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES
MAX_EVENT_AGE_MS = 14 * 24 * 3600 * 1000


def plan_batches(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split spooled events (``t`` ms, ``m`` message, ``s`` stream) into PutLogEvents batches.

    A batch has one stream, at most MAX_BATCH_EVENTS events and MAX_BATCH_BYTES bytes (26 bytes
    of overhead per event), and spans at most 24 hours. Timestamps inside a batch are made
    non-decreasing (a clock step back would otherwise fail the whole batch: "must be in
    chronological order"); the original time stays in the report's ``time`` field.
    """
    batch: list[dict[str, Any]] = []
    size = 0
    for event in events:
        cost = len(event["m"].encode("utf-8")) + EVENT_OVERHEAD_BYTES
        if batch and (event["s"] != batch[0]["s"] or len(batch) >= MAX_BATCH_EVENTS
                      or size + cost > MAX_BATCH_BYTES
                      or event["t"] - batch[0]["t"] > MAX_BATCH_SPAN_MS):
            yield batch
            batch, size = [], 0
        if batch and event["t"] < batch[-1]["t"]:
            event = dict(event, t=batch[-1]["t"])
        batch.append(event)
        size += cost
    if batch:
        yield batch


class Spool:
    """An ordered, bounded, crash-safe queue of log events on disk.

    Layout in ``directory``: ``spool-<gen>.jsonl`` (append-only, one event per line) and
    ``state.json`` (``gen``, byte ``offset`` of the first unsent line, ``dropped`` count),
    replaced atomically. Compaction writes generation ``gen+1`` with the unsent lines, then
    switches ``state.json`` to it, then removes the old file, so a crash at any point leaves a
    consistent pair.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        """Open (create) the spool in ``directory``."""
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.max_bytes = int(max_bytes)
        state = self._read_state()
        self.gen: int = state["gen"]
        self.offset: int = state["offset"]
        self.dropped: int = state["dropped"]
        for stray in self.dir.glob("spool-*.jsonl"):  # leftovers of an interrupted compaction
            if stray.name != self._file(self.gen).name:
                stray.unlink()
        self._file(self.gen).touch(exist_ok=True)

    def _file(self, gen: int) -> Path:
        return self.dir / f"spool-{gen}.jsonl"

    def _read_state(self) -> dict[str, int]:
        try:
            raw = json.loads((self.dir / "state.json").read_text("utf-8"))
            return {"gen": int(raw["gen"]), "offset": int(raw["offset"]),
                    "dropped": int(raw.get("dropped", 0))}
        except FileNotFoundError:
            return {"gen": 0, "offset": 0, "dropped": 0}
        except (ValueError, KeyError, TypeError) as exc:
            # A torn state file cannot happen (atomic replace); a hand-edited one can. Sending
            # from the start of the spool duplicates rather than loses.
            logger.error("spool state %s unreadable (%s); resending the whole spool",
                         self.dir / "state.json", exc)
            gens = sorted(int(p.stem.split("-")[1]) for p in self.dir.glob("spool-*.jsonl"))
            return {"gen": gens[-1] if gens else 0, "offset": 0, "dropped": 0}

    def _write_state(self) -> None:
        replace_file(self.dir / "state.json",
                     json.dumps({"gen": self.gen, "offset": self.offset, "dropped": self.dropped}))

    @property
    def pending_bytes(self) -> int:
        """Bytes of unsent events on disk."""
        return max(0, self._file(self.gen).stat().st_size - self.offset)

    def append(self, event: dict[str, Any]) -> None:
        """Append one event durably; drop the oldest unsent ones first when over the bound."""
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
        if self.pending_bytes + len(line) > self.max_bytes:
            self._drop_oldest(self.pending_bytes + len(line) - self.max_bytes)
        fd = os.open(self._file(self.gen), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _drop_oldest(self, need: int) -> None:
        freed = dropped = 0
        new_offset = self.offset
        for length, _event in self._iter_from(self.offset):
            if freed >= need:
                break
            freed += length
            new_offset += length
            dropped += 1
        if dropped:
            self.offset, self.dropped = new_offset, self.dropped + dropped
            self._write_state()
            logger.warning("CloudWatch Logs spool full (%d bytes): dropped %d oldest report(s), "
                           "%d in total", self.max_bytes, dropped, self.dropped)

    def _iter_from(self, offset: int) -> Iterator[tuple[int, dict[str, Any]]]:
        with open(self._file(self.gen), "rb") as fh:
            fh.seek(offset)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # a torn last line (crash mid-append): never acknowledged, skip it
                try:
                    yield len(raw), json.loads(raw)
                except ValueError:
                    logger.error("skipping a corrupt spool line in %s", self._file(self.gen))
                    yield len(raw), {}

    def pending(self, limit_bytes: int = 8 * MAX_BATCH_BYTES) -> list[tuple[int, dict[str, Any]]]:
        """Unsent events in order with their line lengths (up to about ``limit_bytes``)."""
        out: list[tuple[int, dict[str, Any]]] = []
        total = 0
        for length, event in self._iter_from(self.offset):
            out.append((length, event))
            total += length
            if total >= limit_bytes:
                break
        return out

    def count_dropped(self, count: int) -> None:
        """Count reports dropped before they reached the spool (persistent)."""
        self.dropped += count
        self._write_state()

    def acknowledge(self, nbytes: int, dropped: int = 0) -> None:
        """Mark the next ``nbytes`` of lines as sent (``dropped`` of them rejected by the service)."""
        self.offset += nbytes
        self.dropped += dropped
        self._write_state()
        if self.offset >= 64 * 1024 or self.pending_bytes == 0:
            self._compact()

    def _compact(self) -> None:
        old = self._file(self.gen)
        new = self._file(self.gen + 1)
        with open(old, "rb") as src, open(new, "wb") as dst:
            src.seek(self.offset)
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        self.gen, self.offset = self.gen + 1, 0
        self._write_state()
        old.unlink()


class CloudWatchLogsSink(Sink):
    """Sends reports with PutLogEvents through a spool (see the module docstring)."""

    name = "cloudwatch_logs"

    def __init__(self, client_factory: Callable[[], Any], log_group: str,
                 log_stream: str | None, spool_dir: str | os.PathLike[str],
                 spool_max_bytes: int = 50 * 1024 * 1024, create: bool = True,
                 retry_max_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``client_factory`` builds the boto3 ``logs`` client (lazily, once)."""
        self._client_factory = client_factory
        self._client: Any = None
        self.log_group, self.log_stream = log_group, log_stream
        self.spool = Spool(spool_dir, spool_max_bytes)
        self.create = create
        self._retry_max = retry_max_seconds
        self._clock = clock
        self._backoff = 0.0
        self._next_try = 0.0
        self._known_streams: set[str] = set()
        self.sent = 0
        self.last_error: str | None = None

    @property
    def dropped(self) -> int:
        """Reports dropped because the spool was full or CloudWatch rejected them (persistent)."""
        return self.spool.dropped

    def _stream_for(self, report: Report) -> str:
        if self.log_stream:
            return self.log_stream
        # The CloudWatch agent config in cloudwatch/ uses {instance_id} as the stream, so a host's
        # reports land in the same stream whichever way they are shipped.
        instance = report.identity.instance_id if report.identity else None
        return str(instance or socket.gethostname())

    def emit(self, report: Report) -> None:
        """Spool the report durably, then try to send what is pending."""
        message = report.to_json()
        if len(message.encode("utf-8")) > MAX_EVENT_BYTES:
            self.spool.count_dropped(1)
            logger.error("report %s is larger than a log event may be (%d bytes); dropped",
                         report.run_id, MAX_EVENT_BYTES)
            return
        self.spool.append({"t": report.time_ms, "s": self._stream_for(report), "m": message})
        self.flush()

    def flush(self, force: bool = False) -> None:
        """Send pending events unless backing off from a failure (``force`` ignores the backoff)."""
        if not force and self._clock() < self._next_try:
            return
        try:
            while self._send_some():
                pass
        except Exception as exc:  # noqa: BLE001 - any failure: keep the spool, back off
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._backoff = min(self._retry_max, max(1.0, self._backoff * 2))
            self._next_try = self._clock() + self._backoff
            logger.warning("CloudWatch Logs send failed (%s); %d byte(s) spooled, retry in %.0f s",
                           self.last_error, self.spool.pending_bytes, self._backoff)
            return
        self._backoff, self._next_try, self.last_error = 0.0, 0.0, None

    def close(self) -> None:
        """One last forced attempt; whatever is unsent stays spooled for the next start."""
        self.flush(force=True)

    def _logs(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _send_some(self) -> bool:
        """Send one batch; True when something was sent and more may be pending."""
        pending = self.spool.pending()
        if not pending:
            return False
        now_ms = int(time.time() * 1000)
        lengths = [length for length, _ in pending]
        events = [dict(e, _i=i) for i, (_, e) in enumerate(pending)]
        # Events the service would reject as too old (after a long outage) go now, counted.
        too_old = 0
        while too_old < len(events) and (not events[too_old].get("m")
                                         or now_ms - events[too_old]["t"] > MAX_EVENT_AGE_MS):
            too_old += 1
        if too_old:
            logger.warning("dropping %d spooled report(s) older than 14 days (CloudWatch Logs "
                           "rejects them)", too_old)
            self.spool.acknowledge(sum(lengths[:too_old]), dropped=too_old)
            return True
        batch = next(plan_batches(events))
        stream = batch[0]["s"]
        response = self._put(stream, [{"timestamp": e["t"], "message": e["m"]} for e in batch])
        rejected = response.get("rejectedLogEventsInfo") or {}
        dropped = 0
        if rejected:
            # Indexes of the first too-new / last too-old / last expired events (API reference,
            # RejectedLogEventsInfo): those are not stored and would be rejected again.
            dropped = (int(rejected.get("tooOldLogEventEndIndex", -1)) + 1
                       + int(rejected.get("expiredLogEventEndIndex", -1)) + 1)
            if "tooNewLogEventStartIndex" in rejected:
                dropped += len(batch) - int(rejected["tooNewLogEventStartIndex"])
            logger.warning("CloudWatch Logs rejected %d event(s): %s", dropped, rejected)
        self.spool.acknowledge(sum(lengths[e["_i"]] for e in batch), dropped=min(dropped,
                                                                                  len(batch)))
        self.sent += len(batch)
        return True

    def _put(self, stream: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        from botocore.exceptions import ClientError
        client = self._logs()
        try:
            return client.put_log_events(logGroupName=self.log_group, logStreamName=stream,
                                         logEvents=events)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "ResourceNotFoundException" or not self.create:
                raise
        self._ensure_stream(client, stream)
        return client.put_log_events(logGroupName=self.log_group, logStreamName=stream,
                                     logEvents=events)

    def _ensure_stream(self, client: Any, stream: str) -> None:
        from botocore.exceptions import ClientError
        for call, kwargs in ((client.create_log_group, {"logGroupName": self.log_group}),
                             (client.create_log_stream, {"logGroupName": self.log_group,
                                                         "logStreamName": stream})):
            try:
                call(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
        self._known_streams.add(stream)
