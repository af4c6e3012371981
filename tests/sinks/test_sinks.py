"""Sinks: JSON Lines rotation, CloudWatch Logs spool across an outage and a restart, EMF,
Prometheus textfile, Nagios perfdata, fan-out. Real files, a real moto server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from s3_route_agent.aws import make_client
from s3_route_agent.devenv.localenv.environment import LocalEnvironment
from s3_route_agent.devenv.localenv.world import MotoServer
from s3_route_agent.engine.model import Expect, PathKind, Status, Target, TargetVerdict
from s3_route_agent.report.document import Report, report_schema
from s3_route_agent.sinks import FanOut, Sink
from s3_route_agent.sinks.cloudwatch_logs import (
    EVENT_OVERHEAD_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    CloudWatchLogsSink,
    plan_batches,
)
from s3_route_agent.sinks.emf import EmfSink, emf_records
from s3_route_agent.sinks.jsonl import JsonLinesSink
from s3_route_agent.sinks.prometheus import PrometheusTextfileSink, prometheus_text
from support import MemorySink


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """A report from a real check against the local environment (validated by the schema)."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_EC2_METADATA_DISABLED="true")
    from s3_route_agent.config import load_config
    from s3_route_agent.runs.check import run_check
    from s3_route_agent.wiring import build_check_deps
    with LocalEnvironment() as env:
        path = env.write_config(tmp_path_factory.mktemp("cfg") / "config.yaml")
        config = load_config(path)
        report = run_check(config, build_check_deps(config)).report
    jsonschema.validate(report.document, report_schema())
    return report


def _numbered(report: Report, i: int) -> Report:
    return dataclasses.replace(report, run_id=f"{i:032x}")


def _one_target_report(name: str, status: Status = Status.OK) -> Report:
    verdict = TargetVerdict(Target(name, "h", Expect.ANY), PathKind.PUBLIC, status, "r")
    return Report(run_id="0" * 32, started=1_700_000_000.25, duration_seconds=1.0,
                  identity=None, status=status, verdicts=(verdict,))


# --- JSON Lines -------------------------------------------------------------------------------

class _Follower:
    """Follows a file by name like ``tail -F`` / the CloudWatch agent: reads the open descriptor to
    its end, and only then switches to the new file when the name points elsewhere."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "rb")
        self.buffer = b""
        self.lines: list[bytes] = []
        self.rotations = 0

    def poll(self) -> None:
        while True:
            self.buffer += self.fh.read()
            *complete, self.buffer = self.buffer.split(b"\n")
            self.lines += complete
            if os.stat(self.path).st_ino == os.fstat(self.fh.fileno()).st_ino:
                return
            self.buffer += self.fh.read()  # the rotated file is finished: drain, then switch
            *complete, self.buffer = self.buffer.split(b"\n")
            self.lines += complete
            assert self.buffer == b"", "a line was split across files"
            self.fh.close()
            self.fh = open(self.path, "rb")
            self.rotations += 1


def test_jsonl_rotation_never_loses_a_followed_line(tmp_path: Path,
                                                    real_report: Report) -> None:
    path = tmp_path / "reports.jsonl"
    now = [0.0]
    sink = JsonLinesSink(path, max_bytes=3 * len(real_report.to_json()), backups=2,
                         min_rotate_interval=5.0, clock=lambda: now[0])
    follower = _Follower(path)
    for i in range(40):
        sink.emit(_numbered(real_report, i))
        now[0] += 1.0
        if i % 5 == 4:  # the reader polls every 5 s, more often than rotation may happen, and
            follower.poll()  # lags behind by a rotation, holding the rotated file open
    sink.close()
    follower.poll()
    ids = [json.loads(line)["run_id"] for line in follower.lines]
    assert ids == [f"{i:032x}" for i in range(40)]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["reports.jsonl", "reports.jsonl.1", "reports.jsonl.2"]  # bounded on disk
    assert follower.rotations >= 5
    for name in files:
        for line in (tmp_path / name).read_text().splitlines():
            jsonschema.validate(json.loads(line), report_schema())


def test_jsonl_appends_across_restarts(tmp_path: Path, real_report: Report) -> None:
    path = tmp_path / "r.jsonl"
    for i in range(3):
        sink = JsonLinesSink(path)
        sink.emit(_numbered(real_report, i))
        sink.close()
    assert [json.loads(x)["run_id"][-1] for x in path.read_text().splitlines()] == ["0", "1", "2"]


# --- CloudWatch Logs ----------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _logs_factory(endpoint: str) -> Any:
    return lambda: make_client("logs", "eu-west-1", endpoint, connect_timeout=1, read_timeout=2,
                               max_attempts=1)


def _stream_messages(endpoint: str, group: str, stream: str) -> list[str]:
    client = _logs_factory(endpoint)()
    events = client.get_log_events(logGroupName=group, logStreamName=stream,
                                   startFromHead=True)["events"]
    return [e["message"] for e in events]


def test_report_survives_outage_and_restart(tmp_path: Path, moto_server: MotoServer,
                                           real_report: Report) -> None:
    spool = tmp_path / "spool"
    group, stream = "/s3-route-agent/outage-test", "host-a"
    down = CloudWatchLogsSink(_logs_factory(f"http://127.0.0.1:{_closed_port()}"), group, stream,
                              spool)
    for i in range(5):
        down.emit(_numbered(real_report, i))
    assert down.drain(10) is False           # the sender thread tried and backs off
    assert down.last_error and "Could not connect" in down.last_error
    assert down.spool.pending_bytes > 0 and down.sent == 0
    down.close()  # the process stops while CloudWatch is still down

    up = CloudWatchLogsSink(_logs_factory(moto_server.endpoint_url), group, stream, spool)
    up.emit(_numbered(real_report, 5))  # first emit after the restart sends the backlog too
    up.close()
    messages = _stream_messages(moto_server.endpoint_url, group, stream)
    assert [json.loads(m)["run_id"] for m in messages] == [f"{i:032x}" for i in range(6)]
    assert up.dropped == 0 and up.spool.pending_bytes == 0
    # A third start sends nothing again (each report exactly once).
    again = CloudWatchLogsSink(_logs_factory(moto_server.endpoint_url), group, stream, spool)
    again.close()
    assert len(_stream_messages(moto_server.endpoint_url, group, stream)) == 6


def test_spool_is_bounded_and_counts_drops_across_restarts(tmp_path: Path, moto_server: MotoServer,
                                                           real_report: Report) -> None:
    # What the sink spools: the report as one Logs Insights event (report/logs_event.py).
    from s3_route_agent.report.document import render_json
    from s3_route_agent.report.logs_event import logs_event
    size = len(render_json(logs_event(real_report.document)))
    spool = tmp_path / "spool"
    group, stream = "/s3-route-agent/bounded", "host-b"
    down = CloudWatchLogsSink(_logs_factory(f"http://127.0.0.1:{_closed_port()}"), group, stream,
                              spool, spool_max_bytes=int(size * 3.5))
    for i in range(10):
        down.emit(_numbered(real_report, i))
    assert down.dropped == 7
    down.close()
    up = CloudWatchLogsSink(_logs_factory(moto_server.endpoint_url), group, stream, spool,
                            spool_max_bytes=int(size * 3.5))
    assert up.dropped == 7  # persisted
    assert up.drain(10) is True
    ids = [json.loads(m)["run_id"] for m in _stream_messages(moto_server.endpoint_url, group,
                                                             stream)]
    assert ids == [f"{i:032x}" for i in (7, 8, 9)]  # the newest survive, in order


def test_stream_defaults_to_instance_id(tmp_path: Path, moto_server: MotoServer,
                                        real_report: Report) -> None:
    sink = CloudWatchLogsSink(_logs_factory(moto_server.endpoint_url), "/s3-route-agent/default",
                              None, tmp_path / "s")
    sink.emit(real_report)
    sink.close()
    instance = real_report.identity.instance_id
    assert len(_stream_messages(moto_server.endpoint_url, "/s3-route-agent/default", instance)) == 1


def test_batches_respect_putlogevents_limits() -> None:
    base = 1_700_000_000_000
    many = [{"t": base + i, "s": "a", "m": "x"} for i in range(MAX_BATCH_EVENTS + 5)]
    sizes = [len(b) for b in plan_batches(many)]
    assert sizes == [MAX_BATCH_EVENTS, 5]

    big = "y" * 200_000
    batches = list(plan_batches([{"t": base, "s": "a", "m": big} for _ in range(11)]))
    for batch in batches:
        assert sum(len(e["m"]) + EVENT_OVERHEAD_BYTES for e in batch) <= MAX_BATCH_BYTES
    assert [len(b) for b in batches] == [5, 5, 1]

    day = 24 * 3600 * 1000
    spans = list(plan_batches([{"t": base, "s": "a", "m": "1"},
                               {"t": base + day + 1, "s": "a", "m": "2"}]))
    assert len(spans) == 2
    streams = list(plan_batches([{"t": base, "s": "a", "m": "1"}, {"t": base, "s": "b", "m": "2"}]))
    assert [b[0]["s"] for b in streams] == ["a", "b"]
    # A clock step back inside a batch keeps the order and makes the timestamps non-decreasing.
    (batch,) = plan_batches([{"t": base + 50, "s": "a", "m": "1"}, {"t": base, "s": "a", "m": "2"}])
    assert [e["m"] for e in batch] == ["1", "2"] and batch[1]["t"] == base + 50


# --- EMF ------------------------------------------------------------------------------------------

def test_emf_lines_follow_the_specification(real_report: Report) -> None:
    stream = io.StringIO()
    EmfSink(namespace="Test/S3Route", stream=stream).emit(real_report)
    docs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(docs) == len(real_report.verdicts) + 1
    for doc in docs:
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert isinstance(doc["_aws"]["Timestamp"], int)
        assert directive["Namespace"] == "Test/S3Route"
        assert len(directive["Metrics"]) <= 100
        for dims in directive["Dimensions"]:
            for dim in dims:
                assert isinstance(doc[dim], str)  # dimension values are strings
        for metric in directive["Metrics"]:
            assert isinstance(doc[metric["Name"]], (int, float))
    by_target = {d["TargetName"]: d for d in docs if "TargetName" in d}
    for target in real_report.document["targets"]:
        doc = by_target[target["name"]]
        assert doc["PathOk"] == (1.0 if target["status"] == "OK" else 0.0)
        assert doc["Path"] == target["path"] and doc["Expected"] == target["expect"]
        dimension_names = {n for dims in doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
                           for n in dims}
        assert "instance_id" in doc and not dimension_names & {"instance_id", "InstanceId"}


def test_emf_file_output(tmp_path: Path, real_report: Report) -> None:
    sink = EmfSink(path=str(tmp_path / "emf.jsonl"))
    sink.emit(real_report)
    sink.close()
    lines = (tmp_path / "emf.jsonl").read_text().splitlines()
    assert lines and all(json.loads(x)["_aws"] for x in lines)
    assert emf_records(real_report, "S3RouteAgent")[0]["_aws"]["CloudWatchMetrics"][0][
        "Namespace"] == "S3RouteAgent"


# --- Prometheus -----------------------------------------------------------------------------------

def test_prometheus_textfile_parses_and_is_replaced_atomically(tmp_path: Path,
                                                               real_report: Report) -> None:
    from prometheus_client.parser import text_string_to_metric_families
    path = tmp_path / "s3_route_agent.prom"
    sink = PrometheusTextfileSink(path)
    sink.emit(real_report)
    first_inode = os.stat(path).st_ino
    sink.emit(real_report)
    assert os.stat(path).st_ino != first_inode  # replaced by rename, never rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["s3_route_agent.prom"]
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    assert {"probe_success", "probe_duration_seconds", "probe_path_info",
            "probe_dns_lookup_time_seconds", "s3_route_agent_status"} <= set(families)
    success = {s.labels["target"]: s.value for s in families["probe_success"].samples}
    assert success == {t["name"]: (1.0 if t["status"] == "OK" else 0.0)
                       for t in real_report.document["targets"]}
    paths = {s.labels["target"]: s.labels["path"] for s in families["probe_path_info"].samples}
    assert paths == {t["name"]: t["path"] for t in real_report.document["targets"]}


def test_prometheus_label_escaping() -> None:
    from prometheus_client.parser import text_string_to_metric_families
    report = _one_target_report('we"ird\\name\nx')
    families = {f.name: f for f in text_string_to_metric_families(prometheus_text(report))}
    assert families["probe_success"].samples[0].labels["target"] == 'we"ird\\name\nx'


# --- fan-out ------------------------------------------------------------------------------------

class _Broken(Sink):
    name = "broken"

    def emit(self, report: Report) -> None:
        raise OSError("disk on fire")


def test_fanout_keeps_feeding_other_sinks(real_report: Report) -> None:
    memory = MemorySink()
    fan = FanOut([_Broken(), memory])
    fan.emit(real_report)
    fan.emit(real_report)
    fan.close()
    assert len(memory.reports) == 2 and fan.failures["broken"] == 2
