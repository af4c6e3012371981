"""S3 ranges from a local ip-ranges.json file, or a cached download from a 127.0.0.1 server."""

from __future__ import annotations

import http.server
import os
import threading

import pytest

from s3_route_agent.collectors.ip_ranges import RangesError, load_s3_ranges, load_s3_ranges_file
from s3_route_agent.devenv.localenv.world import IP_RANGES_PATH
from s3_route_agent.engine.verdict import S3RangeIndex


def test_local_file_keeps_only_s3_rows_of_both_families():
    ranges = load_s3_ranges_file(IP_RANGES_PATH)
    index = S3RangeIndex(ranges)
    assert index.region_for("198.51.100.10") == "eu-west-1"
    assert index.region_for("203.0.113.10") == "us-east-1"
    assert index.region_for("203.0.113.130") == "us-west-2"
    assert index.region_for("2001:db8:e1::1") == "eu-west-1"
    assert {r.region for r in ranges} >= {"eu-west-1", "us-east-1"}


@pytest.mark.parametrize("content,kind", [("{not json", "invalid_ranges"),
                                          ('{"prefixes": [{"service": "S3"}]}', "invalid_ranges"),
                                          ("[1, 2]", "invalid_ranges")])
def test_bad_files_are_one_line_errors(tmp_path, content, kind):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(RangesError) as info:
        load_s3_ranges_file(path)
    assert info.value.kind == kind and "\n" not in info.value.message


def test_missing_file(tmp_path):
    with pytest.raises(RangesError) as info:
        load_s3_ranges_file(tmp_path / "none.json")
    assert info.value.kind == "ranges_unreadable"


def test_no_file_and_no_download_means_no_ranges(tmp_path):
    assert load_s3_ranges(None, False, "http://127.0.0.1:9/x", tmp_path, 24) == ()


class _Serve(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []
    body = IP_RANGES_PATH.read_bytes()

    def do_GET(self) -> None:  # noqa: N802
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        """Quiet."""


def test_download_is_cached_and_refreshed_by_age(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/ip-ranges.json"
    _Serve.hits.clear()
    try:
        first = load_s3_ranges(None, True, url, tmp_path, 24)
        second = load_s3_ranges(None, True, url, tmp_path, 24)
        assert first == second and len(_Serve.hits) == 1   # second read from the cache
        cached = tmp_path / "ip-ranges.json"
        old = cached.stat().st_mtime - 25 * 3600
        os.utime(cached, (old, old))
        load_s3_ranges(None, True, url, tmp_path, 24)
        assert len(_Serve.hits) == 2                         # older than max age: fetched again
    finally:
        server.shutdown()
        server.server_close()
    # Server gone and cache stale: the stale copy is kept rather than failing.
    os.utime(tmp_path / "ip-ranges.json", (0, 0))
    assert load_s3_ranges(None, True, url, tmp_path, 24) == first


def test_failed_first_download_is_an_error(tmp_path):
    with pytest.raises(RangesError) as info:
        load_s3_ranges(None, True, "http://127.0.0.1:9/ip-ranges.json", tmp_path, 24,
                       timeout_seconds=0.5)
    assert info.value.kind == "ranges_download_failed"
