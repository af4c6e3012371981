"""Flow-log corroboration against moto's CloudWatch Logs in server mode on 127.0.0.1.

moto runs Logs Insights queries only partly: it returns every record of the time range with
@timestamp/@message and ignores parse/filter, so these tests also prove that the agent filters
the records itself (ENI, port 443, addresses) before calling anything evidence."""

from __future__ import annotations

import time

import boto3
import pytest

from s3_route_agent.collectors.flow_logs import (FlowLogSettings, PendingStore, build_query, collect,
                            corroborate, log_fields, start_query)
from s3_route_agent.devenv.localenv.environment import safe_environ
from s3_route_agent.devenv.localenv.world import start_moto_server

GROUP = "/vpc/flow-logs"
ENI = "eni-0123456789abcdef0"
# The transfer window starts an hour ago: CloudWatch Logs (and moto) drop events older than 14
# days or more than 2 hours in the future, so the records must be recent.
T0 = int(time.time()) - 3600


def record(eni: str, dst: str, port: str, path: str) -> str:
    return (f"5 111122223333 {eni} 10.0.1.10 {dst} 49152 {port} 6 10 5000 {T0} {T0 + 5} "
            f"ACCEPT OK {path} S3")


@pytest.fixture(scope="module")
def logs():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in safe_environ().items():
            patch.setenv(name, value)
        server = start_moto_server()
        try:
            client = boto3.session.Session(region_name="eu-west-1").client(
                "logs", endpoint_url=server.endpoint_url)
            client.create_log_group(logGroupName=GROUP)
            client.create_log_stream(logGroupName=GROUP, logStreamName=ENI)
            client.put_log_events(logGroupName=GROUP, logStreamName=ENI, logEvents=[
                # Outside the queried window: must never count.
                {"timestamp": (T0 - 5000) * 1000, "message": record(ENI, "198.51.100.11", "443",
                                                                    "8")},
                {"timestamp": (T0 + 1) * 1000, "message": record(ENI, "198.51.100.11", "443", "7")},
                {"timestamp": (T0 + 2) * 1000, "message": record(ENI, "203.0.113.11", "443", "8")},
                {"timestamp": (T0 + 3) * 1000, "message": record(ENI, "198.51.100.11", "80", "8")},
                {"timestamp": (T0 + 4) * 1000, "message": record("eni-other", "198.51.100.11",
                                                                 "443", "8")},
            ])
            yield client
        finally:
            server.stop()


SETTINGS = FlowLogSettings(log_group=GROUP, margin_seconds=60, limit=50, max_wait_seconds=600)


def test_query_is_bounded_and_parses_the_format():
    query = build_query(SETTINGS, ENI, ["198.51.100.11"])
    assert "| limit 50" in query
    assert 'filter interface_id = "eni-0123456789abcdef0" and dstport = "443"' in query
    assert "traffic_path" in query and "parse @message" in query
    assert log_fields("${interface-id} ${traffic-path}") == ["interface_id", "traffic_path"]
    with pytest.raises(ValueError):
        build_query(FlowLogSettings(GROUP, log_format="${version} ${srcaddr}"), ENI, [])
    with pytest.raises(ValueError):
        build_query(SETTINGS, 'eni-1" or 1=1', [])


@pytest.mark.parametrize("addresses,path,codes", [
    (["198.51.100.11"], "gateway", ("7",)),
    (["203.0.113.11"], "public", ("8",)),
    (["198.51.100.11", "203.0.113.11"], "mixed", ("7", "8")),
])
def test_collect_reads_the_traffic_path(logs, addresses, path, codes):
    pending = start_query(logs, SETTINGS, "run-a", ENI, addresses, T0, T0 + 5, now=T0 + 600)
    assert pending is not None and pending.window_end - pending.window_start == 5 + 120
    result = collect(logs, SETTINGS, pending, now=T0 + 700)
    assert result is not None and result.status == "found"
    assert result.corroborates_run == "run-a"
    assert result.path == path and result.traffic_paths == codes
    assert all(f.dstaddr in addresses for f in result.flows)


def _attached(run_id: str, answers) -> dict:
    """The document of a report that carries ``answers`` under ``flow_logs``."""
    from s3_route_agent.engine.model import Status
    from s3_route_agent.report.document import Report
    return Report(run_id=run_id, started=T0, duration_seconds=0.0, identity=None,
                  status=Status.OK, flow_logs=tuple(answers)).document


def test_no_records_waits_then_gives_up(logs):
    pending = start_query(logs, SETTINGS, "run-b", ENI, ["192.0.2.1"], T0, T0 + 5, now=T0 + 60)
    assert collect(logs, SETTINGS, pending, now=T0 + 120) is None   # records may still come
    late = collect(logs, SETTINGS, pending, now=T0 + 60 + 601)
    assert late is not None and late.status == "no_records"


def test_later_run_attaches_the_answer(logs, tmp_path):
    store = PendingStore(tmp_path)
    first = corroborate(logs, SETTINGS, store, now=T0 + 10,
                        new_run=("run-1", ENI, ["198.51.100.11"], T0, T0 + 5))
    assert first == [] and [p.run_id for p in store.load()] == ["run-1"]
    second = corroborate(logs, SETTINGS, store, now=T0 + 400)
    assert [c.corroborates_run for c in second] == ["run-1"] and store.load() == []
    report = _attached("run-2", second)
    assert report["flow_logs"][0]["corroborates_run"] == "run-1"
    assert report["flow_logs"][0]["path"] == "gateway"


def test_unknown_log_group_never_raises(logs, tmp_path):
    settings = FlowLogSettings(log_group="/missing")
    store = PendingStore(tmp_path)
    assert corroborate(logs, settings, store, now=T0,
                       new_run=("run-x", ENI, ["198.51.100.11"], T0, T0 + 5)) == []
    assert store.load() == []


def test_attached_answers_match_the_report_schema(logs, tmp_path):
    import jsonschema

    from s3_route_agent.report.document import report_schema
    store = PendingStore(tmp_path)
    corroborate(logs, SETTINGS, store, now=T0 + 10,
                new_run=("run-9", ENI, ["203.0.113.11"], T0, T0 + 5))
    report = _attached("run-10", corroborate(logs, SETTINGS, store, now=T0 + 400))
    jsonschema.validate(report["flow_logs"], report_schema()["properties"]["flow_logs"])
    assert report["flow_logs"][0]["path"] == "public"
