"""Metric sinks read the typed report: after a real test transfer (to moto on 127.0.0.1) EMF has
TransferSeconds and Prometheus probe_transfer_duration_seconds, and every Prometheus value parses
back to exactly the report's value (the last-run timestamp to the millisecond)."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from typing import Any

import boto3
import pytest
from prometheus_client.parser import text_string_to_metric_families

from s3_route_agent.config import load_config
from s3_route_agent.devenv.localenv.environment import LocalEnvironment
from s3_route_agent.report.document import Report
from s3_route_agent.runs.check import run_check
from s3_route_agent.sinks.emf import EmfSink
from s3_route_agent.sinks.prometheus import prometheus_text, sample_value
from s3_route_agent.wiring import build_check_deps
from support import transfers_to


@pytest.fixture(scope="module")
def transfer_report(local_env: LocalEnvironment,
                    tmp_path_factory: pytest.TempPathFactory) -> Report:
    """A check whose one target ran a real PUT/GET/DELETE against the moto server."""
    bucket = f"canary-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name="eu-west-1", endpoint_url=local_env.moto.endpoint_url
                 ).create_bucket(Bucket=bucket,
                                 CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    path = local_env.write_config(
        tmp_path_factory.mktemp("cfg") / "c.yaml",
        [{"name": "canary", "host": "{bucket}.s3.{region}.amazonaws.com", "bucket": bucket,
          "expect": "any"}], buckets=[bucket],
        transfer={"enabled": True, "bucket": bucket, "size_bytes": 4096, "timeout_seconds": 30},
        state_dir=str(tmp_path_factory.mktemp("state")))
    config = load_config(path)
    report = run_check(config, transfers_to(build_check_deps(config),
                                            local_env.moto.endpoint_url)).report
    (verdict,) = report.verdicts
    assert verdict.transfer is not None and verdict.transfer.outcome == "ok", verdict.transfer
    return report


def test_transfer_result_carries_its_duration(transfer_report: Report) -> None:
    """The typed transfer has a total duration covering its steps; the JSON has duration_ms."""
    transfer = transfer_report.verdicts[0].transfer
    assert transfer is not None and transfer.duration_seconds is not None
    steps_ms = sum(s.total_ms or 0 for s in transfer.steps)
    assert transfer.duration_seconds * 1000 >= steps_ms > 0
    assert transfer_report.document["targets"][0]["transfer"]["duration_ms"] == round(
        transfer.duration_seconds * 1000, 1)


def test_emf_has_transfer_seconds(transfer_report: Report) -> None:
    """TransferSeconds is declared and carries the transfer's duration."""
    stream = io.StringIO()
    EmfSink(stream=stream).emit(transfer_report)
    target_doc = json.loads(stream.getvalue().splitlines()[0])
    names = [m["Name"] for m in target_doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert "TransferSeconds" in names
    assert target_doc["TransferSeconds"] == round(
        transfer_report.verdicts[0].transfer.duration_seconds, 6) > 0


def _samples(text: str) -> dict[str, list[Any]]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_prometheus_has_the_transfer_duration(transfer_report: Report) -> None:
    """probe_transfer_duration_seconds parses back to exactly the transfer's duration."""
    samples = _samples(prometheus_text(transfer_report))
    (sample,) = samples["probe_transfer_duration_seconds"]
    assert sample.labels == {"target": "canary"}
    assert sample.value == transfer_report.verdicts[0].transfer.duration_seconds


def test_every_prometheus_value_round_trips(transfer_report: Report) -> None:
    """Each gauge equals its typed value exactly; the last-run timestamp is the report's time to
    the millisecond (it used to be printed with 6 significant digits)."""
    samples = _samples(prometheus_text(transfer_report))
    verdict = transfer_report.verdicts[0]
    assert samples["probe_duration_seconds"][0].value == transfer_report.duration_seconds
    assert samples["probe_dns_lookup_time_seconds"][0].value == verdict.dns.latency_ms / 1000.0
    assert samples["s3_route_agent_ec2_calls"][0].value == transfer_report.facts.ec2_calls
    stamp = samples["s3_route_agent_last_run_timestamp_seconds"][0].value
    shown = dt.datetime.fromisoformat(transfer_report.time.replace("Z", "+00:00"))
    assert round(stamp * 1000) == round(shown.timestamp() * 1000)
    assert stamp == transfer_report.time_ms / 1000


@pytest.mark.parametrize("value", [1796161884.684, 0.1 + 0.2, 1e-7, 123456789.123456, 3.0, 0])
def test_sample_values_parse_back_exactly(value: float) -> None:
    """The textfile's number format loses nothing, where ``{:g}`` kept 6 digits."""
    text = f"# TYPE x gauge\nx {sample_value(value)}\n"
    assert _samples(text)["x"][0].value == value
    assert f"{1796161884.684:g}" == "1.79616e+09"   # the old format: off by up to an hour
