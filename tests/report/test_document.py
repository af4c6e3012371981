"""The report document: time and time_ms agree to the millisecond, UNKNOWN reports are
schema-valid, optional sections appear only when gathered, the document is redacted."""

from __future__ import annotations

import datetime as dt

import jsonschema
import pytest

from s3_route_agent.engine.evidence import Corroboration
from s3_route_agent.engine.model import Status
from s3_route_agent.report.document import Report, iso_time, report_schema, unknown_report


@pytest.mark.parametrize("started", [1_700_000_000.0, 1_700_000_000.0005, 1_796_161_884.6849999,
                                     0.999, 1_700_000_000.123456])
def test_time_and_time_ms_show_the_same_millisecond(started: float) -> None:
    report = Report(run_id="0" * 32, started=started, duration_seconds=0.0, identity=None,
                    status=Status.OK)
    shown = dt.datetime.fromisoformat(report.time.replace("Z", "+00:00"))
    assert round(shown.timestamp() * 1000) == report.time_ms
    assert report.time == iso_time(report.time_ms)


def test_unknown_report_is_schema_valid_and_one_line() -> None:
    report = unknown_report("IMDS unreachable:\n  timed out", 1_700_000_000.0,
                            1_700_000_001.5, "a" * 32)
    document = report.document
    jsonschema.validate(document, report_schema())
    assert document["status"] == "UNKNOWN" and document["exit_code"] == 3
    assert document["errors"] == ["IMDS unreachable: timed out"]
    assert document["summary"] == "UNKNOWN: IMDS unreachable: timed out"
    assert document["duration_ms"] == 1500.0


def test_flow_logs_only_when_there_are_answers() -> None:
    base = Report(run_id="0" * 32, started=1.0, duration_seconds=0.0, identity=None,
                  status=Status.OK)
    assert "flow_logs" not in base.to_dict() and "policies" not in base.to_dict()
    answered = Report(run_id="0" * 32, started=1.0, duration_seconds=0.0, identity=None,
                      status=Status.OK, flow_logs=(Corroboration("r1", "expired"),))
    assert answered.to_dict()["flow_logs"][0]["corroborates_run"] == "r1"
    jsonschema.validate(answered.document, report_schema())


def test_document_is_redacted() -> None:
    secret = "X-Amz-Signature=" + "ab" * 32
    report = unknown_report(f"GET https://b.s3.amazonaws.com/k?{secret}", 1.0, 2.0, "b" * 32)
    assert "ab" * 32 not in report.to_json() and "ab" * 32 in report.to_dict()["errors"][0]
