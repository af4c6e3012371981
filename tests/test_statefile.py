"""Every state file the agent reads back survives binary garbage: set aside (``.corrupt-TIME``),
logged once, rebuilt (issue 9 section 3). Real files in a temporary state directory; the S3
ranges download comes from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from s3_route_agent.collectors.bucket_facts import BucketFacts, BucketFactsCache
from s3_route_agent.collectors.connections import ObservedStateFile
from s3_route_agent.collectors.flow_logs import PendingQuery, PendingStore
from s3_route_agent.collectors.ip_ranges import load_s3_ranges
from s3_route_agent.devenv.localenv.world import IP_RANGES_PATH
from s3_route_agent.engine.observed import ObservedState
from s3_route_agent.sinks.cloudwatch_logs import Spool
from s3_route_agent.statefile import (StateFileError, check_checksum, content_checksum,
                                      read_state_json, set_aside, with_checksum)

GARBAGE = b"\x00\xff\xfe\x89PNG\r\n\x1a\n\xc3\x28 not a state file \x80\x81" * 20


def test_checksum_round_trip_and_tamper() -> None:
    document = with_checksum({"format": 2, "cidrs": ["198.51.100.0/25"], "n": 1.5})
    assert check_checksum(json.loads(json.dumps(document, indent=1))) == document
    tampered = dict(document, cidrs=["198.51.100.0/97"])
    with pytest.raises(StateFileError, match="checksum mismatch"):
        check_checksum(tampered)
    with pytest.raises(StateFileError, match="no checksum"):
        check_checksum({"format": 2})
    assert content_checksum(document) == document["sha256"]


def test_read_state_json_garbage_and_missing(tmp_path: Path) -> None:
    assert read_state_json(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_bytes(GARBAGE)
    with pytest.raises(StateFileError, match="not JSON"):
        read_state_json(tmp_path / "bad.json")


def test_set_aside_logs_once_when_it_cannot_rename(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "dir" / "state.json"
    path.parent.mkdir()
    path.write_bytes(GARBAGE)
    path.parent.chmod(0o500)
    try:
        with caplog.at_level(logging.WARNING):
            first = set_aside(path, "garbage", clock=lambda: 5.0)
            second = set_aside(path, "garbage", clock=lambda: 5.0)
    finally:
        path.parent.chmod(0o700)
    if first is not None:           # root renames in a read-only directory: nothing to see
        pytest.skip("root may rename in a read-only directory")
    assert second is None and caplog.text.count("cannot be set aside") == 1


class _RangesServer:
    """ip-ranges.json over HTTP on 127.0.0.1, counting downloads."""

    def __init__(self, body: bytes) -> None:
        self.downloads = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.downloads += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ip-ranges.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def ranges_server() -> Iterator[_RangesServer]:
    server = _RangesServer(IP_RANGES_PATH.read_bytes())
    yield server
    server.server.shutdown()
    server.server.server_close()


def _spool_state(state_dir: Path) -> Any:
    spool = Spool(state_dir / "spool", 1 << 20)
    return spool.gen, spool.offset


LOADERS: dict[str, tuple[str, Callable[[Path], Any], Any]] = {
    # name: (file under the state dir, load it, what a rebuilt state looks like)
    "bucket facts": ("bucket-facts.json", lambda d: BucketFactsCache(d, 900).load_fresh(), {}),
    "observed state": ("observed.json",
                       lambda d: ObservedStateFile(d, clock=lambda: 7.0).load()[0],
                       ObservedState(since=7.0)),
    "flow-log queries": ("flowlog-queries.json", lambda d: PendingStore(d).load(), []),
    "spool state": ("spool/state.json", _spool_state, (0, 0)),
}


@pytest.mark.parametrize("name", list(LOADERS))
def test_binary_garbage_in_a_state_file_is_set_aside_and_rebuilt(
        tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture) -> None:
    relative, load, rebuilt = LOADERS[name]
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(GARBAGE)
    with caplog.at_level(logging.WARNING):
        assert load(tmp_path) == rebuilt
    assert "set aside" in caplog.text
    (aside,) = path.parent.glob(f"{path.name}.corrupt-*")
    assert aside.read_bytes() == GARBAGE
    assert not path.exists() or path.read_bytes() != GARBAGE
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert load(tmp_path) == rebuilt        # once: the file is out of the way
    assert "set aside" not in caplog.text


def test_bucket_facts_cache_with_a_changed_value_is_refetched(tmp_path: Path) -> None:
    cache = BucketFactsCache(tmp_path, 900, clock=lambda: 100.0)
    assert cache.store([BucketFacts("b", "eu-west-1", None, (), None, None, 2)])
    assert set(cache.load_fresh()) == {"b"}
    cache.path.write_text(cache.path.read_text().replace("eu-west-1", "us-east-1"))
    assert cache.load_fresh() == {}
    assert list(tmp_path.glob("bucket-facts.json.corrupt-*"))


def test_flow_log_queries_round_trip_after_garbage(tmp_path: Path) -> None:
    store = PendingStore(tmp_path)
    store.path.write_bytes(GARBAGE)
    assert store.load() == []
    query = PendingQuery("r", "q", "eni-1", ["198.51.100.10"], 1, 2, 3.0)
    store.save([query])
    assert store.load() == [query]


@pytest.mark.parametrize("damage", ["garbage", "cidr", "checksum"])
def test_cached_s3_ranges_download_is_set_aside_and_fetched_again(
        tmp_path: Path, ranges_server: _RangesServer, damage: str) -> None:
    first = load_s3_ranges(None, True, ranges_server.url, tmp_path, 24)
    assert first and ranges_server.downloads == 1
    cached = tmp_path / "ip-ranges.json"
    if damage == "garbage":
        cached.write_bytes(GARBAGE)
    elif damage == "cidr":           # a range that no longer parses (checksum file removed)
        (tmp_path / "ip-ranges.json.sha256").unlink()
        network = first[0].network
        cached.write_text(cached.read_text().replace(f'"{network}"',
                                                     f'"{network.split("/")[0]}/97"'))
    else:                            # still valid, but not what was downloaded
        text = cached.read_text()
        cached.write_text(text.replace(first[0].region, "ap-south-1", 1))
    stamp = time.time_ns() + 10**9           # in-place edits within one clock tick look unchanged
    os.utime(cached, ns=(stamp, stamp))
    again = load_s3_ranges(None, True, ranges_server.url, tmp_path, 24)
    assert again == first and ranges_server.downloads == 2
    assert list(tmp_path.glob("ip-ranges.json.corrupt-*"))
