"""CloudWatch assets in cloudwatch/: each file parses, and every field, metric and dimension it
names exists in what the agent writes (a real report, and the EMF lines made from it)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters

from s3_route_agent.devenv.localenv.environment import LocalEnvironment
from s3_route_agent.report.document import Report
from s3_route_agent.sinks.emf import HOST_METRICS, TARGET_METRICS, emf_records

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "cloudwatch"
NAMESPACE = "S3RouteAgent"

# Logs Insights commands, functions and keywords (CloudWatch Logs user guide, "Logs Insights
# query syntax"); every other identifier in a query must be a field.
_KEYWORDS = {"fields", "filter", "stats", "sort", "limit", "display", "parse", "by", "as", "asc",
             "desc", "and", "or", "not", "in", "like", "latest", "earliest", "count",
             "count_distinct", "max", "min", "avg", "sum", "ispresent", "bin", "SOURCE"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_EC2_METADATA_DISABLED="true")
    from s3_route_agent.runs.check import run_check
    from s3_route_agent.config import load_config
    from s3_route_agent.wiring import build_check_deps
    with LocalEnvironment() as env:
        config = load_config(env.write_config(tmp_path_factory.mktemp("c") / "c.yaml"))
        return run_check(config, build_check_deps(config)).report


def _flatten(value: Any, prefix: str = "") -> set[str]:
    """Field names the way Logs Insights discovers them in JSON (``a.b``, ``a.0.b``)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else key
            out.add(name)
            out |= _flatten(item, name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out |= _flatten(item, f"{prefix}.{i}")
    return out


def _query_fields(query: str) -> set[str]:
    body = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("#"))
    body = re.sub(r"\"[^\"]*\"|'[^']*'", " ", body)
    aliases = set(re.findall(r"\bas\s+([A-Za-z_][\w]*)", body))
    names = set(re.findall(r"@?[A-Za-z_][\w.]*", body))
    return {n for n in names if n not in _KEYWORDS and n not in aliases and not n.startswith("@")
            and not re.fullmatch(r"\d+\w*", n)}


def _known_fields(report: Report) -> set[str]:
    fields = _flatten(report.document)
    for doc in emf_records(report, NAMESPACE):
        fields |= _flatten(doc)
    return fields


def test_agent_config_ships_the_reports(report: Report) -> None:
    config = json.loads((ASSETS / "amazon-cloudwatch-agent.json").read_text())
    collect = config["logs"]["logs_collected"]["files"]["collect_list"]
    by_group = {c["log_group_name"]: c for c in collect}
    assert set(by_group) == {"/s3-route-agent/reports", "/s3-route-agent/emf"}
    for entry in collect:
        assert entry["log_stream_name"] == "{instance_id}"
        # LogsDirectory=s3-route-agent in the unit: the agent may write only there.
        assert entry["file_path"].startswith("/var/log/s3-route-agent/")
    unit = (ROOT / "systemd" / "s3-route-agent.service").read_text()
    assert "LogsDirectory=s3-route-agent" in unit


@pytest.mark.parametrize("name", sorted(p.name for p in (ASSETS / "queries").glob("*.query")))
def test_queries_name_only_report_fields(name: str, report: Report) -> None:
    fields = _query_fields((ASSETS / "queries" / name).read_text())
    assert fields, "a query that names no field checks nothing"
    unknown = fields - _known_fields(report)
    assert not unknown, f"{name}: not in the report or its EMF lines: {sorted(unknown)}"


def test_queries_exist() -> None:
    assert len(list((ASSETS / "queries").glob("*.query"))) >= 2


def _metric_names(report: Report) -> dict[str, list[set[str]]]:
    """metric name -> the dimension sets the EMF lines publish it with."""
    out: dict[str, list[set[str]]] = {}
    for doc in emf_records(report, NAMESPACE):
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        for metric in directive["Metrics"]:
            out.setdefault(metric["Name"], []).extend(set(d) for d in directive["Dimensions"])
    return out


def test_dashboard_names_published_metrics(report: Report) -> None:
    dashboard = json.loads((ASSETS / "dashboard.json").read_text())
    published = _metric_names(report)
    names = set(TARGET_METRICS) | set(HOST_METRICS)
    seen = 0
    for widget in dashboard["widgets"]:
        props = widget["properties"]
        if widget["type"] == "metric":
            for row in props["metrics"]:
                namespace, metric, *dims = row
                assert namespace == NAMESPACE and metric in names
                dim_names = set(dims[0::2])
                # TransferSeconds only appears when transfers run; its dimensions match PathOk's.
                sets = published.get(metric) or published["PathOk"]
                assert dim_names in sets, (metric, dim_names)
                seen += 1
        elif widget["type"] == "log":
            unknown = _query_fields(props["query"].split("|", 1)[1]) - _known_fields(report)
            assert not unknown, unknown
    assert seen >= 3


def test_alarm_is_a_valid_put_metric_alarm_request(report: Report) -> None:
    alarm = json.loads((ASSETS / "alarm-path-not-ok.json").read_text())
    model = botocore.session.get_session().get_service_model("cloudwatch")
    validate_parameters(alarm, model.operation_model("PutMetricAlarm").input_shape)
    assert alarm["Namespace"] == NAMESPACE
    dims = {d["Name"] for d in alarm["Dimensions"]}
    assert dims in _metric_names(report)[alarm["MetricName"]]
