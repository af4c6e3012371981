"""The CloudWatch Logs sink under faults (issue 9 sections 1, 2 and 5), through real servers: a
TCP server on 127.0.0.1 that accepts and never answers, a moto server, a nearly full disk (a
small tmpfs this test mounts, as root), spool files damaged by the test."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from s3_route_agent.aws import make_client
from s3_route_agent.devenv.faults import FaultyTcpEndpoint, fill_filesystem
from s3_route_agent.devenv.localenv.world import MotoServer
from s3_route_agent.engine.model import Expect, PathKind, Status, Target, TargetVerdict
from s3_route_agent.report.document import Report
from s3_route_agent.sinks.cloudwatch_logs import CloudWatchLogsSink, decode_record


@pytest.fixture
def hanging() -> Iterator[FaultyTcpEndpoint]:
    server = FaultyTcpEndpoint()
    yield server
    server.close()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _factory(endpoint: str, timeout: float = 2.0) -> Any:
    return lambda: make_client("logs", "eu-west-1", endpoint, connect_timeout=timeout,
                               read_timeout=timeout, max_attempts=1)


def _report(i: int, reason_bytes: int = 200) -> Report:
    verdict = TargetVerdict(Target(f"t{i}", "h", Expect.ANY), PathKind.PUBLIC, Status.OK,
                            "r" * reason_bytes)
    return Report(run_id=f"{i:032x}", started=time.time(), duration_seconds=0.1, identity=None,
                  status=Status.OK, verdicts=(verdict,))


def _delivered(endpoint: str, group: str, stream: str) -> list[int]:
    client = _factory(endpoint)()
    try:
        events = client.get_log_events(logGroupName=group, logStreamName=stream,
                                       startFromHead=True)["events"]
    except client.exceptions.ResourceNotFoundException:
        return []
    return [int(json.loads(e["message"])["run_id"], 16) for e in events]


def _spool_lines(spool: Path) -> list[bytes]:
    (path,) = spool.glob("spool-*.jsonl")
    return path.read_bytes().splitlines(keepends=True)


def test_hanging_endpoint_never_holds_up_emit_or_close(tmp_path: Path, hanging: FaultyTcpEndpoint,
                                                       moto_server: MotoServer) -> None:
    """Section 1: sends to an endpoint that accepts and never answers (read timeout 30 s) run in
    the sink's own thread: each emit returns at once, close returns within stop_flush_seconds,
    and everything stays spooled for the next start, which delivers it in order."""
    spool = tmp_path / "spool"
    group, stream = "/s3-route-agent/hang", "host-h"
    sink = CloudWatchLogsSink(_factory(hanging.url, timeout=30), group, stream, spool,
                              stop_flush_seconds=1.0)
    # A send that held emit or close up would wait out the 30 s read timeout: the bounds below
    # leave room for the spool's fsync on a loaded machine (0.9 s seen under a parallel suite).
    for i in range(3):
        started = time.monotonic()
        sink.emit(_report(i))
        assert time.monotonic() - started < 5
    deadline = time.monotonic() + 10
    while not hanging.accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hanging.accepted, "the sender never connected"
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 1.0 + 5     # stop_flush_seconds, then give up
    assert sink.sent == 0 and sink.spool.pending_bytes > 0

    up = CloudWatchLogsSink(_factory(moto_server.endpoint_url), group, stream, spool)
    assert up.drain(20)
    up.close()
    assert _delivered(moto_server.endpoint_url, group, stream) == [0, 1, 2]


def test_damaged_records_are_skipped_counted_and_never_block(
        tmp_path: Path, moto_server: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    """Section 2: a line of garbage and a bit flip inside a message (still valid JSON: the
    CRC tells) are skipped and counted; the records around them arrive in order."""
    spool = tmp_path / "spool"
    group, stream = "/s3-route-agent/damaged", "host-d"
    down = CloudWatchLogsSink(_factory(f"http://127.0.0.1:{_closed_port()}"), group, stream,
                              spool, stop_flush_seconds=0.2)
    for i in range(4):
        down.emit(_report(i))
    down.close()
    lines = _spool_lines(spool)
    assert len(lines) == 4 and all(decode_record(line) for line in lines)
    lines[1] = b"\x00\xff garbage \x89\n"
    lines[2] = lines[2].replace(b"rrrr", b"rrrs", 1)          # one flipped bit, JSON intact
    assert json.loads(lines[2]) and decode_record(lines[2]) is None
    (path,) = spool.glob("spool-*.jsonl")
    path.write_bytes(b"".join(lines))

    up = CloudWatchLogsSink(_factory(moto_server.endpoint_url), group, stream, spool)
    with caplog.at_level(logging.ERROR):
        assert up.drain(20)
        up.emit(_report(4))
        assert up.drain(20)
    up.close()
    assert _delivered(moto_server.endpoint_url, group, stream) == [0, 3, 4]
    assert up.spool.corrupt == 2 and up.dropped == 2
    assert "damaged record" in caplog.text


def test_torn_last_record_is_cut_and_the_next_one_arrives(tmp_path: Path,
                                                          moto_server: MotoServer) -> None:
    """A crash in the middle of an append leaves half a line: the next start cuts it (counted),
    so the next record does not glue itself to it."""
    spool = tmp_path / "spool"
    group, stream = "/s3-route-agent/torn", "host-t"
    down = CloudWatchLogsSink(_factory(f"http://127.0.0.1:{_closed_port()}"), group, stream,
                              spool, stop_flush_seconds=0.2)
    down.emit(_report(0))
    down.close()
    (path,) = spool.glob("spool-*.jsonl")
    whole = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(whole[: len(whole) // 2])                    # half of a second record
    up = CloudWatchLogsSink(_factory(moto_server.endpoint_url), group, stream, spool)
    up.emit(_report(1))
    assert up.drain(20)
    up.close()
    assert _delivered(moto_server.endpoint_url, group, stream) == [0, 1]
    assert up.spool.corrupt == 1


@pytest.mark.parametrize("state", ["past the end", "binary garbage"])
def test_a_bad_spool_cursor_resends_from_the_start(tmp_path: Path, moto_server: MotoServer,
                                                   caplog: pytest.LogCaptureFixture,
                                                   state: str) -> None:
    """Section 5: an offset past the end of the spool file (or a state file that cannot be read)
    is detected, logged, and the spool is resent from its start: nothing is lost."""
    spool = tmp_path / "spool"
    group, stream = f"/s3-route-agent/cursor-{state.split()[0]}", "host-c"
    down = CloudWatchLogsSink(_factory(f"http://127.0.0.1:{_closed_port()}"), group, stream,
                              spool, stop_flush_seconds=0.2)
    for i in range(4):
        down.emit(_report(i))
    down.close()
    state_file = spool / "state.json"
    if state == "past the end":
        gen = int(next(spool.glob("spool-*.jsonl")).stem.split("-")[1])
        state_file.write_text(json.dumps({"gen": gen, "offset": 10 ** 6, "dropped": 0}))
    else:
        state_file.write_bytes(b"\x89\x00\xffnot json\xc3\x28")
    with caplog.at_level(logging.ERROR):
        up = CloudWatchLogsSink(_factory(moto_server.endpoint_url), group, stream, spool)
        assert up.drain(20)
    up.close()
    assert _delivered(moto_server.endpoint_url, group, stream) == [0, 1, 2, 3]
    assert ("past the end" if state == "past the end" else "unreadable") in caplog.text


# --- a nearly full disk -----------------------------------------------------------------------

@contextlib.contextmanager
def small_tmpfs(size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on a temporary directory (root), unmounted in finally."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root")
    where = Path(tempfile.mkdtemp(prefix="s3ra-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                              str(where)], capture_output=True, text=True, timeout=20)
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True, timeout=20)
        where.rmdir()


def test_full_disk_never_tears_a_record_and_loses_nothing(tmp_path: Path,
                                                          moto_server: MotoServer) -> None:
    """Section 2: with the spool's disk full, a write that only partly fits is truncated back
    (no half line), the reports wait in memory in order, go to the spool once space is back,
    and all of them arrive, in order, when CloudWatch is back too."""
    group, stream = "/s3-route-agent/full-disk", "host-f"
    with small_tmpfs("256k") as disk:
        spool = disk / "spool"
        down = CloudWatchLogsSink(_factory(f"http://127.0.0.1:{_closed_port()}"), group, stream,
                                  spool, stop_flush_seconds=0.2)
        down.emit(_report(0, reason_bytes=5000))
        filler = fill_filesystem(disk)
        for i in (1, 2, 3):                   # the first of these only partly fits: truncated
            down.emit(_report(i, reason_bytes=5000))
        lines = _spool_lines(spool)
        assert [decode_record(line) is not None for line in lines] == [True]
        assert down.spool.held == 3
        filler.unlink()                       # space is back
        down.emit(_report(4, reason_bytes=5000))
        assert down.spool.held == 0
        assert all(decode_record(line) for line in _spool_lines(spool))
        down.close()
        up = CloudWatchLogsSink(_factory(moto_server.endpoint_url), group, stream, spool)
        assert up.drain(20)
        up.close()
    assert _delivered(moto_server.endpoint_url, group, stream) == [0, 1, 2, 3, 4]
    assert up.dropped == 0 and up.spool.corrupt == 0


def test_full_disk_with_cloudwatch_up_sends_from_memory(tmp_path: Path,
                                                        moto_server: MotoServer) -> None:
    """While the disk refuses every write, reports held in memory still go out, in order."""
    group, stream = "/s3-route-agent/full-disk-up", "host-g"
    with small_tmpfs("128k") as disk:
        sink = CloudWatchLogsSink(_factory(moto_server.endpoint_url), group, stream,
                                  disk / "spool")
        sink.emit(_report(0))
        assert sink.drain(20)
        fill_filesystem(disk)
        for i in (1, 2, 3):
            sink.emit(_report(i, reason_bytes=5000))
        assert sink.drain(20) and sink.spool.held == 0
        sink.close()
    assert _delivered(moto_server.endpoint_url, group, stream) == [0, 1, 2, 3]


def test_a_reloads_old_and_new_sink_share_the_spool_and_send_once(
        tmp_path: Path, moto_server: MotoServer) -> None:
    """On SIGHUP the daemon builds the new sinks before it closes the old ones: both use one
    spool (one sender at a time), so every report arrives once, in order."""
    spool = tmp_path / "spool"
    group, stream = "/s3-route-agent/reload", "host-r"
    old = CloudWatchLogsSink(_factory(moto_server.endpoint_url), group, stream, spool)
    for i in range(3):
        old.emit(_report(i))
    new = CloudWatchLogsSink(_factory(moto_server.endpoint_url), group, stream, spool)
    assert new.spool is old.spool
    for i in range(3, 6):
        new.emit(_report(i))
        old.flush(force=True)
    old.close(timeout=0.5)
    assert new.drain(20)
    new.close()
    assert _delivered(moto_server.endpoint_url, group, stream) == [0, 1, 2, 3, 4, 5]
