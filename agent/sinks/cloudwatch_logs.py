"""CloudWatch Logs sink: reports go to an on-disk spool first, then out by PutLogEvents from a
thread of their own.

Nothing is lost when CloudWatch is unreachable, slow or hanging: :meth:`CloudWatchLogsSink.emit`
appends the report to an ordered spool file (fsync'd) and wakes the sender thread; it never
waits for the network, so a CloudWatch endpoint that accepts connections and never answers holds
up neither a cycle, nor the watchdog, nor the stop. The sender sends everything unsent, in
order; a failed send leaves the spool as it was and backs off (``retry_max_seconds``). On close
(the daemon's stop) the sender gets at most ``stop_flush_seconds`` (less when the stop budget is
shorter); what it could not send stays in the spool for the next start.

Delivery is **at least once, in order**: the cursor is written after PutLogEvents succeeds, so a
crash (or a stop) in that window resends one batch. The spool is bounded (``spool_max_bytes``):
beyond it the **oldest unsent** reports are dropped first and counted; records that cannot be
read back are skipped and counted (``dropped``, ``corrupt`` in the state file, which survive
restarts, and :meth:`CloudWatchLogsSink.status`).

Each record is one line, written all-or-nothing: a short write (a nearly full disk) is truncated
back, so a record is either whole or absent and never glues itself to the next. Every record
carries a CRC-32 of its fields, so a damaged line is recognised, skipped and counted, never
blocks the lines after it. When the disk refuses the write altogether, the report is held in
memory (bounded, in order, behind what is on disk) and sent from there, or written to the spool
as soon as the disk takes it again.

PutLogEvents constraints (CloudWatch Logs API reference, PutLogEvents,
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html,
checked 2025): a batch is at most 1,048,576 bytes counting each message's UTF-8 bytes plus 26
bytes per event, at most 10,000 events, in chronological order, spanning at most 24 hours; events
more than 14 days old or 2 hours in the future are rejected; the sequence token is ignored. The
per-event limit is 256 KB in older documentation and 1 MB in newer; the smaller is used.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import os
import socket
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from s3_route_agent.report.document import Report, render_json
from s3_route_agent.report.logs_event import logs_event
from s3_route_agent.sinks.base import Sink
from s3_route_agent.statefile import read_state_json, replace_file, set_aside

logger = logging.getLogger(__name__)

MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES
MAX_EVENT_AGE_MS = 14 * 24 * 3600 * 1000
# Reports held in memory while the disk refuses the spool's writes (a full disk): at most this
# many bytes, the oldest dropped (and counted) first, as on disk.
HELD_MAX_BYTES = 4 * 1024 * 1024
# Compaction rewrites the spool without its sent head once the head is this large (and at
# least half the file), or when everything is sent.
COMPACT_BYTES = 64 * 1024


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


def record_crc(event: dict[str, Any]) -> str:
    """CRC-32 (hex) of a record's time, stream and message: tells a damaged line from a good one."""
    text = f"{event['t']}\n{event['s']}\n{event['m']}"
    return f"{zlib.crc32(text.encode('utf-8')):08x}"


def encode_record(event: dict[str, Any]) -> bytes:
    """One spool line: ``{"t","s","m","c"}`` and a newline (JSON escapes newlines inside)."""
    record = {"t": int(event["t"]), "s": str(event["s"]), "m": str(event["m"])}
    record["c"] = record_crc(record)
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")


def decode_record(raw: bytes) -> dict[str, Any] | None:
    """The event of one spool line, or None when it is damaged (not JSON, a field missing or of
    the wrong type, a CRC that does not match). Lines of older versions carry no CRC."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not (isinstance(record, dict) and isinstance(record.get("t"), int)
            and isinstance(record.get("s"), str) and isinstance(record.get("m"), str)):
        return None
    if "c" in record and record["c"] != record_crc(record):
        return None
    return {"t": record["t"], "s": record["s"], "m": record["m"]}


class Spool:
    """An ordered, bounded, crash-safe queue of log events on disk (thread-safe).

    Layout in ``directory``: ``spool-<gen>.jsonl`` (append-only, one record per line, see
    :func:`encode_record`) and ``state.json`` (``gen``, byte ``offset`` of the first unsent line,
    ``dropped`` and ``corrupt`` counts), replaced atomically. Compaction writes generation
    ``gen+1`` with the unsent lines, then switches ``state.json`` to it, then removes the old
    file, so a crash at any point leaves a consistent pair.

    Opening checks what a crash or a damaged state can leave: a torn last line is cut off (and
    counted), an offset past the end or inside a line is logged and moved back (resending rather
    than losing), an unreadable ``state.json`` is set aside and the whole spool resent.
    One process uses one :class:`Spool` per directory (:func:`open_spool`); ``send_lock`` lets
    one sender at a time read, send and acknowledge, so that two sinks of the same directory
    (the old and the new one of a reload) never send a record twice.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        """Open (create) the spool in ``directory``."""
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.max_bytes = int(max_bytes)
        self.lock = threading.RLock()
        self.send_lock = threading.Lock()
        state = self._read_state()
        self.gen: int = state["gen"]
        self.offset: int = state["offset"]
        self.dropped: int = state["dropped"]
        self.corrupt: int = state["corrupt"]
        self._held: collections.deque[tuple[bytes, dict[str, Any]]] = collections.deque()
        self._held_bytes = 0
        self._held_epoch = 0          # changes when the held reports are written to disk
        self._held_sending = False    # a sender has a batch of held reports in flight
        self._write_failing = False   # the last write failed (logged once per episode)
        self._state_dirty = False     # counts/offset not yet persisted (state write failed)
        self.retired = False          # released by its last sink: acknowledges nothing more
        for stray in self.dir.glob("spool-*.jsonl"):  # leftovers of an interrupted compaction
            if stray.name != self._file(self.gen).name:
                stray.unlink()
        self._file(self.gen).touch(exist_ok=True)
        with self.lock:
            try:
                self._repair_tail()
                self._check_offset()
            except OSError as exc:   # a read-only or failing disk: sending still works
                logger.error("cannot check the CloudWatch Logs spool %s: %s", self.dir,
                             exc.strerror or exc)

    def _file(self, gen: int) -> Path:
        return self.dir / f"spool-{gen}.jsonl"

    def _read_state(self) -> dict[str, int]:
        path = self.dir / "state.json"
        try:
            raw = read_state_json(path)
            if raw is None:
                return {"gen": 0, "offset": 0, "dropped": 0, "corrupt": 0}
            return {"gen": int(raw["gen"]), "offset": int(raw["offset"]),
                    "dropped": int(raw.get("dropped", 0)), "corrupt": int(raw.get("corrupt", 0))}
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            # Sending the whole spool again duplicates rather than loses.
            set_aside(path, f"{type(exc).__name__}: {exc}")
            logger.error("CloudWatch Logs spool state %s unreadable; resending the whole spool",
                         path)
            # The oldest generation: a newer one may be a compaction a crash interrupted.
            gens = sorted(int(p.stem.split("-")[1]) for p in self.dir.glob("spool-*.jsonl")
                          if p.stem.split("-")[1].isdigit())
            return {"gen": gens[0] if gens else 0, "offset": 0, "dropped": 0, "corrupt": 0}

    def _write_state(self) -> None:
        """Persist the cursor and counts; a failure (full disk) is logged, not raised: the state
        in memory stays right and is written with the next change (a crash meanwhile resends)."""
        try:
            replace_file(self.dir / "state.json", json.dumps({
                "gen": self.gen, "offset": self.offset, "dropped": self.dropped,
                "corrupt": self.corrupt}))
            self._state_dirty = False
        except OSError as exc:
            if not self._state_dirty:
                logger.warning("cannot write CloudWatch Logs spool state (%s); kept in memory",
                               exc.strerror or exc)
            self._state_dirty = True

    def _size(self) -> int:
        return self._file(self.gen).stat().st_size

    def _repair_tail(self) -> None:
        """Cut a torn last line (a crash mid-append) so the next record starts on a line."""
        path = self._file(self.gen)
        size = self._size()
        if size == 0:
            return
        with open(path, "rb+") as fh:
            end = size
            while end > 0:
                start = max(0, end - 65536)
                fh.seek(start)
                chunk = fh.read(end - start)
                if end == size and chunk.endswith(b"\n"):
                    return
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    end = start + cut + 1
                    break
                end = start
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
        self.corrupt += 1
        self.dropped += 1
        logger.warning("CloudWatch Logs spool %s ended in a torn record (%d bytes); cut off and "
                       "counted", path, size - end)
        self.offset = min(self.offset, end)
        self._write_state()

    def _check_offset(self) -> None:
        """An offset past the end, or inside a line, cannot be right: log it and go back (to the
        start of the file, or of that line), resending rather than losing reports."""
        size = self._size()
        if self.offset > size:
            logger.error("CloudWatch Logs spool offset %d is past the end of %s (%d bytes); "
                         "resending the spool from its start", self.offset,
                         self._file(self.gen).name, size)
            self.offset = 0
            self._write_state()
        elif self.offset > 0:
            with open(self._file(self.gen), "rb") as fh:
                fh.seek(self.offset - 1)
                if fh.read(1) != b"\n":
                    fh.seek(0)
                    head = fh.read(self.offset)
                    line_start = head.rfind(b"\n") + 1
                    logger.error("CloudWatch Logs spool offset %d is inside a record of %s; "
                                 "resending from that record (%d)", self.offset,
                                 self._file(self.gen).name, line_start)
                    self.offset = line_start
                    self._write_state()

    # -- writing -------------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        """Bytes of unsent events on disk."""
        with self.lock:
            return max(0, self._size() - self.offset)

    @property
    def held(self) -> int:
        """Reports held in memory because the disk refused them."""
        with self.lock:
            return len(self._held)

    def append(self, event: dict[str, Any]) -> bool:
        """Append one event; drop the oldest unsent ones first when over the bound.

        True when it is on disk (fsync'd); False when the disk refused it and it is held in
        memory (sent from there, or written to disk as soon as the disk takes it again).
        """
        line = encode_record(event)
        with self.lock:
            if self._held and not self._held_sending:
                self._write_held()
            if not self._held and self._write_line(line):
                return True
            self._hold(line, event)
            return False

    def _write_line(self, line: bytes) -> bool:
        """Write one record all-or-nothing; False (logged once per episode) when the disk
        refuses it. A short write is truncated back: a record is whole or absent."""
        if self.pending_bytes + len(line) > self.max_bytes:
            self._drop_oldest(self.pending_bytes + len(line) - self.max_bytes)
        try:
            fd = os.open(self._file(self.gen), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                         | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            return self._write_failed(exc)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    written = os.write(fd, view)
                    if written <= 0:
                        raise OSError(errno.ENOSPC, "short write")
                    view = view[written:]
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, start)
                except OSError as cut:
                    logger.error("cannot truncate the spool back after a failed write: %s "
                                 "(the next start cuts the torn record)", cut.strerror or cut)
                return self._write_failed(exc)
        finally:
            os.close(fd)
        if self._write_failing:
            logger.warning("CloudWatch Logs spool %s writable again", self._file(self.gen))
            self._write_failing = False
        if self._state_dirty:
            self._write_state()
        return True

    def _write_failed(self, exc: OSError) -> bool:
        if not self._write_failing:
            logger.error("cannot write the CloudWatch Logs spool %s (%s): holding reports in "
                         "memory (at most %d bytes) until it can", self._file(self.gen),
                         exc.strerror or exc, HELD_MAX_BYTES)
            self._write_failing = True
        return False

    def _hold(self, line: bytes, event: dict[str, Any]) -> None:
        self._held.append((line, event))
        self._held_bytes += len(line)
        dropped = 0
        while self._held_bytes > HELD_MAX_BYTES and len(self._held) > 1:
            old, _ = self._held.popleft()
            self._held_bytes -= len(old)
            dropped += 1
        if dropped:
            self.dropped += dropped
            self._write_state()
            logger.warning("CloudWatch Logs: dropped %d oldest report(s) held in memory (disk "
                           "full, %d bytes held), %d in total", dropped, self._held_bytes,
                           self.dropped)

    def _write_held(self) -> None:
        """Move the held reports to disk, in order, as far as the disk takes them."""
        moved = False
        while self._held:
            line, _ = self._held[0]
            if not self._write_line(line):
                break
            self._held.popleft()
            self._held_bytes -= len(line)
            moved = True
        if moved:
            self._held_epoch += 1

    def persist_held(self) -> int:
        """Write what is held in memory to disk (at stop, also while a send of them is in
        flight: a duplicate rather than a loss); returns how many the disk still refused. Those
        stay held (a reload's next sink sends them); a process that exits loses them, and says
        so (the disk is full: no count could be written either)."""
        with self.lock:
            sending, self._held_sending = self._held_sending, False
            self._write_held()
            self._held_sending = sending and bool(self._held)
            left = len(self._held)
            if left:
                logger.error("CloudWatch Logs: %d report(s) held in memory could not be written "
                             "to the spool (disk full): lost if the process ends now", left)
            return left

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

    # -- reading and acknowledging ---------------------------------------------------------------

    def _iter_from(self, offset: int) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """(length, event or None when damaged) of each whole line from ``offset``."""
        with open(self._file(self.gen), "rb") as fh:
            fh.seek(offset)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # a record being written (or torn by a crash): never acknowledged
                yield len(raw), decode_record(raw)

    def pending(self, limit_bytes: int = MAX_BATCH_BYTES
                ) -> tuple[int, int, list[tuple[int, dict[str, Any] | None]]]:
        """(gen, offset, unsent records in order with their line lengths, up to about
        ``limit_bytes``); a damaged record is ``None``."""
        with self.lock:
            out: list[tuple[int, dict[str, Any] | None]] = []
            total = 0
            for length, event in self._iter_from(self.offset):
                out.append((length, event))
                total += length
                if total >= limit_bytes:
                    break
            return self.gen, self.offset, out

    def count_dropped(self, count: int) -> None:
        """Count reports dropped before they reached the spool (persistent)."""
        with self.lock:
            self.dropped += count
            self._write_state()

    def acknowledge(self, gen: int, start: int, lengths: list[int], dropped: int = 0,
                    corrupt: int = 0) -> None:
        """Mark the records of ``lengths`` from ``start`` as done: sent (``dropped`` of them
        rejected by the service), or skipped (``corrupt`` damaged ones, counted as dropped too).
        """
        with self.lock:
            if gen != self.gen or self.retired:
                # Not after a compaction (only the holder of send_lock compacts), nor once
                # another Spool object may own the directory: resent then, never lost.
                return
            end = start + sum(lengths)
            if self.offset > start and not (dropped or corrupt):
                # The bound dropped some of these while they were in flight; they arrived, so
                # they are not dropped after all.
                passed = 0
                for length in lengths:
                    if start + passed + length > self.offset:
                        break
                    passed += length
                    self.dropped -= 1
            self.offset = max(self.offset, end)
            self.dropped += dropped + corrupt
            self.corrupt += corrupt
            self._write_state()
            # Rewritten once the sent head is at least half the file (and COMPACT_BYTES), so a
            # long backlog is copied a bounded number of times, not once per batch.
            if self.pending_bytes == 0 or (self.offset >= COMPACT_BYTES
                                           and self.offset * 2 >= self._size()):
                self._compact()

    def held_batch(self) -> tuple[int, list[dict[str, Any]]]:
        """(epoch, the held reports in order) for a sender; marks them in flight."""
        with self.lock:
            if not self._held:
                return self._held_epoch, []
            self._held_sending = True
            return self._held_epoch, [event for _, event in self._held]

    def release_held(self, epoch: int, sent: int) -> None:
        """The first ``sent`` held reports of ``epoch`` were delivered (0: the send failed)."""
        with self.lock:
            self._held_sending = False
            if epoch != self._held_epoch:
                return    # written to disk meanwhile (stop): they go again from there
            for _ in range(min(sent, len(self._held))):
                line, _ = self._held.popleft()
                self._held_bytes -= len(line)

    def _compact(self) -> None:
        old = self._file(self.gen)
        new = self._file(self.gen + 1)
        try:
            with open(old, "rb") as src, open(new, "wb") as dst:
                src.seek(self.offset)
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        except OSError as exc:    # a full disk: keep the old generation, try again later
            new.unlink(missing_ok=True)
            logger.debug("spool compaction deferred: %s", exc.strerror or exc)
            return
        self.gen, self.offset = self.gen + 1, 0
        self._write_state()
        if self._state_dirty:     # the switch is not on disk: the old file must stay
            self.gen, self.offset = self.gen - 1, old.stat().st_size - new.stat().st_size
            new.unlink(missing_ok=True)
            return
        old.unlink()


_SPOOLS: dict[str, tuple[Spool, int]] = {}     # realpath -> (spool, sinks using it)
_SPOOLS_LOCK = threading.Lock()


def open_spool(directory: str | os.PathLike[str], max_bytes: int) -> Spool:
    """The process's :class:`Spool` of ``directory``: one per directory while a sink uses it
    (a reload's old and new sinks share it); ``max_bytes`` is the latest caller's. Pair with
    :func:`release_spool`."""
    key = os.path.realpath(directory)
    with _SPOOLS_LOCK:
        spool, users = _SPOOLS.get(key, (None, 0))
        if spool is None or not spool.dir.is_dir():
            spool, users = Spool(directory, max_bytes), 0
        spool.max_bytes = int(max_bytes)
        _SPOOLS[key] = (spool, users + 1)
        return spool


def release_spool(spool: Spool) -> None:
    """A sink is done with ``spool``; the last one out forgets it (a later open reads the
    directory afresh, as a new process would)."""
    key = os.path.realpath(spool.dir)
    with _SPOOLS_LOCK:
        current, users = _SPOOLS.get(key, (None, 0))
        if current is spool:
            if users <= 1:
                del _SPOOLS[key]
                spool.retired = True
            else:
                _SPOOLS[key] = (spool, users - 1)


class CloudWatchLogsSink(Sink):
    """Sends reports with PutLogEvents through a spool, from a thread of its own (see the
    module docstring)."""

    name = "cloudwatch_logs"

    def __init__(self, client_factory: Callable[[], Any], log_group: str,
                 log_stream: str | None, spool_dir: str | os.PathLike[str],
                 spool_max_bytes: int = 50 * 1024 * 1024, create: bool = True,
                 retry_max_seconds: float = 300.0, stop_flush_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``client_factory`` builds the boto3 ``logs`` client (lazily, once, in the sender
        thread); its timeouts bound one attempt (the spool retries)."""
        self._client_factory = client_factory
        self._client: Any = None
        self.log_group, self.log_stream = log_group, log_stream
        self.spool = open_spool(spool_dir, spool_max_bytes)
        self.create = create
        self._retry_max = retry_max_seconds
        self.stop_flush_seconds = stop_flush_seconds
        self._clock = clock
        self._backoff = 0.0
        self._next_try = 0.0
        self._known_streams: set[str] = set()
        self.sent = 0
        self.last_error: str | None = None
        self._cond = threading.Condition()
        self._wanted = False       # a send round is asked for
        self._force = False        # ... now, whatever the backoff
        self._busy = False
        self._closing = False
        self._released = False
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Reports dropped (spool full, rejected by CloudWatch, damaged on disk), persistent."""
        return self.spool.dropped

    def status(self) -> dict[str, Any]:
        """Counters for people and benchmarks: sent, pending bytes, held, dropped, corrupt."""
        return {"sent": self.sent, "pending_bytes": self.spool.pending_bytes,
                "held": self.spool.held, "dropped": self.spool.dropped,
                "corrupt": self.spool.corrupt, "last_error": self.last_error}

    def _stream_for(self, report: Report) -> str:
        if self.log_stream:
            return self.log_stream
        # The CloudWatch agent config in cloudwatch/ uses {instance_id} as the stream, so a host's
        # reports land in the same stream whichever way they are shipped.
        instance = report.identity.instance_id if report.identity else None
        return str(instance or socket.gethostname())

    def emit(self, report: Report) -> None:
        """Spool the report durably and wake the sender; never waits for the network."""
        # As one event Logs Insights discovers whole: trimmed beyond its 200 fields per event
        # (report/logs_event.py); the file and stdout sinks keep the full report.
        message = render_json(logs_event(report.document))
        if len(message.encode("utf-8")) > MAX_EVENT_BYTES:
            self.spool.count_dropped(1)
            logger.error("report %s is larger than a log event may be (%d bytes); dropped",
                         report.run_id, MAX_EVENT_BYTES)
            return
        self.spool.append({"t": report.time_ms, "s": self._stream_for(report), "m": message})
        self._kick()

    def flush(self, force: bool = False) -> None:
        """Wake the sender (``force``: now, whatever the backoff); does not wait."""
        self._kick(force)

    def drain(self, timeout: float, force: bool = True) -> bool:
        """Wake the sender and wait up to ``timeout`` s for a round to end with nothing left to
        send; True when everything was sent."""
        deadline = self._clock() + timeout
        self._kick(force)
        with self._cond:
            while self._wanted or self._busy:
                remaining = deadline - self._clock()
                if remaining <= 0 or (self._wanted and not self._busy and not self._force
                                      and self._next_try > self._clock()):
                    break    # backing off after a failure: nothing more will happen in time
                self._cond.wait(min(remaining, 0.1))
        return self.spool.pending_bytes == 0 and self.spool.held == 0

    def close(self, timeout: Optional[float] = None) -> None:
        """One last forced round, bounded by ``stop_flush_seconds`` (and ``timeout``); whatever
        is unsent stays spooled for the next start (reports held in memory are written to the
        spool first)."""
        limit = self.stop_flush_seconds if timeout is None else min(timeout,
                                                                    self.stop_flush_seconds)
        deadline = self._clock() + max(0.0, limit)
        with self._cond:
            self._closing = True
        self._kick(force=True)
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - self._clock()))
            if thread.is_alive():
                logger.warning("CloudWatch Logs: sending still unfinished after %.1f s at stop; "
                               "%d byte(s) stay spooled for the next start", limit,
                               self.spool.pending_bytes)
        self.spool.persist_held()
        if not self._released:
            self._released = True
            release_spool(self.spool)

    # -- the sender thread -------------------------------------------------------------------------

    def _kick(self, force: bool = False) -> None:
        with self._cond:
            self._wanted = True
            self._force = self._force or force
            if self._thread is None or not self._thread.is_alive():
                if self._closing and self._thread is not None:
                    return       # closed: a new round would outlive the stop
                self._thread = threading.Thread(target=self._run, name="cloudwatch-logs",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._wanted and self._closing:
                        return
                    now = self._clock()
                    if self._wanted and (self._force or now >= self._next_try):
                        break
                    self._cond.wait(None if not self._wanted else self._next_try - now)
                self._wanted = self._force = False
                self._busy = True
            ok = False
            try:
                ok = self._send_all()
            except Exception as exc:  # noqa: BLE001 - the sender thread must never die
                logger.error("CloudWatch Logs sender: %s: %s", type(exc).__name__, exc)
            finally:
                with self._cond:
                    self._busy = False
                    if not ok and not self._closing:
                        self._wanted = True        # retry after the backoff
                    self._cond.notify_all()
            with self._cond:
                # Closing: one more round only when asked after this one had started (the last
                # report of a stop) and this one succeeded; a failure ends it (no backoff wait).
                if self._closing and (not ok or not self._wanted):
                    return

    def _send_all(self) -> bool:
        """Send until nothing is pending; False (backing off) after a failure."""
        with self.spool.send_lock:
            try:
                while self._send_some():
                    pass
            except Exception as exc:  # noqa: BLE001 - any failure: keep the spool, back off
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._backoff = min(self._retry_max, max(1.0, self._backoff * 2))
                self._next_try = self._clock() + self._backoff
                logger.warning("CloudWatch Logs send failed (%s); unsent reports stay spooled, "
                               "retry in %.0f s", self.last_error, self._backoff)
                return False
        self._backoff, self._next_try, self.last_error = 0.0, 0.0, None
        return True

    def _logs(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _send_some(self) -> bool:
        """Send (or skip) one batch; True when something was done and more may be pending."""
        gen, start, pending = self.spool.pending()
        if pending:
            return self._send_spooled(gen, start, pending)
        epoch, held = self.spool.held_batch()
        if not held:
            return False
        sent = 0
        try:
            batch = next(plan_batches(held))
            self._send_batch(batch)
            sent = len(batch)
        finally:
            self.spool.release_held(epoch, sent)
        return True

    def _send_spooled(self, gen: int, start: int,
                      pending: list[tuple[int, dict[str, Any] | None]]) -> bool:
        now_ms = int(time.time() * 1000)
        lengths = [length for length, _ in pending]
        # Damaged records are skipped, counted and logged; they never block the ones after.
        corrupt = 0
        while corrupt < len(pending) and pending[corrupt][1] is None:
            corrupt += 1
        if corrupt:
            logger.error("skipping %d damaged record(s) of the CloudWatch Logs spool", corrupt)
            self.spool.acknowledge(gen, start, lengths[:corrupt], corrupt=corrupt)
            return True
        good: list[dict[str, Any]] = []
        for _, event in pending:
            if event is None:
                break
            good.append(event)
        # Events the service would reject as too old (after a long outage) go now, counted.
        too_old = 0
        while too_old < len(good) and now_ms - good[too_old]["t"] > MAX_EVENT_AGE_MS:
            too_old += 1
        if too_old:
            logger.warning("dropping %d spooled report(s) older than 14 days (CloudWatch Logs "
                           "rejects them)", too_old)
            self.spool.acknowledge(gen, start, lengths[:too_old], dropped=too_old)
            return True
        batch = next(plan_batches(good))
        rejected = self._send_batch(batch)
        self.spool.acknowledge(gen, start, lengths[:len(batch)], dropped=rejected)
        return True

    def _send_batch(self, batch: list[dict[str, Any]]) -> int:
        """PutLogEvents of one batch (one stream); how many events the service rejected."""
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
        self.sent += len(batch)
        return min(dropped, len(batch))

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
