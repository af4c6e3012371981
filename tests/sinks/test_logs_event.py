"""What goes to CloudWatch Logs stays within what Logs Insights discovers per event (200 fields,
report/logs_event.py cites the page): a 50-target report from a real check is over, its event
is not, and every field the shipped queries of the reports log group read is in that event;
the CloudWatch Logs sink sends the event while the JSON Lines file keeps the full report."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from s3_route_agent.aws import make_client
from s3_route_agent.devenv.localenv.environment import LocalEnvironment
from s3_route_agent.devenv.localenv.world import MotoServer
from s3_route_agent.report.document import Report
from s3_route_agent.report.logs_event import (LOGS_INSIGHTS_MAX_FIELDS, field_count,
                                              flattened_fields, logs_event)
from s3_route_agent.sinks.cloudwatch_logs import CloudWatchLogsSink
from s3_route_agent.sinks.jsonl import JsonLinesSink

QUERIES = Path(__file__).resolve().parents[2] / "cloudwatch" / "queries"


@pytest.fixture(scope="module")
def report_50(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """A real check of 50 targets (the local world's five names, ten times each)."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_EC2_METADATA_DISABLED="true")
    from s3_route_agent.config import load_config
    from s3_route_agent.runs.check import run_check
    from s3_route_agent.wiring import build_check_deps
    with LocalEnvironment() as env:
        names = env.config()["targets"]
        targets = [dict(t, name=f"{t['name']}-{i}") for i in range(10) for t in names]
        path = env.write_config(tmp_path_factory.mktemp("cfg") / "config.yaml", targets=targets)
        config = load_config(path)
        report = run_check(config, build_check_deps(config)).report
    assert len(report.verdicts) == 50
    return report


def reports_group_fields() -> set[str]:
    """Every field (not @-generated) the queries of the reports log group name."""
    fields: set[str] = set()
    for query in QUERIES.glob("*.query"):
        text = query.read_text()
        if "/s3-route-agent/reports" not in text.splitlines()[0]:
            continue
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        for command in body.split("|"):
            command = re.sub(r'"[^"]*"', "", command)                 # string literals
            command = re.sub(r"\bas\s+\w+", "", command)               # aliases
            for name in re.findall(r"(?<![@\w.])([A-Za-z_]\w*(?:\.\w+)*)\b(?!\s*\(|\.)", command):
                if name not in {"fields", "filter", "stats", "sort", "by", "desc", "asc",
                                "and", "or", "not", "last_status", "last_summary",
                                "last_seen", "why", "age_seconds"}:
                    fields.add(name)
    return fields


def test_queries_name_the_fields_they_read() -> None:
    assert {"identity.instance_id", "identity.vpc_id", "identity.availability_zone", "status",
            "summary", "facts.stale", "facts.inventory_age_seconds"} == reports_group_fields()


def test_50_target_event_is_discovered_whole(report_50: Report) -> None:
    document = report_50.document
    assert field_count(document) > LOGS_INSIGHTS_MAX_FIELDS      # the full report is over
    event = logs_event(document)
    names = set(flattened_fields(event))
    assert len(names) == field_count(event) <= LOGS_INSIGHTS_MAX_FIELDS
    assert reports_group_fields() <= names
    for key in ("status", "summary", "identity", "facts", "run_id", "time"):
        assert event[key] == document[key]
    assert event["trimmed"]["targets"] == 50 and event["trimmed"]["fields"] > 200
    shown = event["targets"]
    assert 0 < len(shown) == event["trimmed"]["targets_shown"] < 50
    statuses = [t["status"] for t in shown]
    assert statuses == sorted(statuses, key=lambda s: s == "OK")   # not OK first
    not_ok = sum(1 for v in report_50.verdicts if v.status.name != "OK")
    assert event["trimmed"]["targets_not_ok"] == not_ok


def test_a_report_that_fits_is_sent_as_it_is() -> None:
    small: dict[str, Any] = {"status": "OK", "identity": {"instance_id": "i-1"},
                             "targets": [{"name": "a", "path": "gateway"}]}
    assert logs_event(small) is small


def test_sink_sends_the_event_and_the_file_keeps_the_report(tmp_path: Path, report_50: Report,
                                                            moto_server: MotoServer) -> None:
    group, stream = "/s3-route-agent/fields-test", "host-50"
    sink = CloudWatchLogsSink(lambda: make_client("logs", "eu-west-1", moto_server.endpoint_url,
                                                  max_attempts=1),
                              group, stream, tmp_path / "spool")
    sink.emit(report_50)
    sink.close()
    client = make_client("logs", "eu-west-1", moto_server.endpoint_url)
    [message] = [e["message"] for e in client.get_log_events(
        logGroupName=group, logStreamName=stream, startFromHead=True)["events"]]
    sent = json.loads(message)
    assert sent == logs_event(report_50.document)
    assert field_count(sent) <= LOGS_INSIGHTS_MAX_FIELDS
    lines = tmp_path / "reports.jsonl"
    jsonl = JsonLinesSink(lines)
    jsonl.emit(report_50)
    jsonl.close()
    assert len(json.loads(lines.read_text().splitlines()[0])["targets"]) == 50
