"""Nagios performance data from the typed report (after ``|`` on the plugin output line)."""

from __future__ import annotations

import re

from s3_route_agent.engine.model import (DnsAnswer, Expect, PathKind, ResolvedAddress, Status,
                                         Target, TargetVerdict)
from s3_route_agent.report.document import Report, RunFacts
from s3_route_agent.report.nagios import perfdata, with_perfdata

_PERF_ITEM = re.compile(r"^(?:'(?:[^']|'')+'|[^' =]+)=-?[0-9.]+(?:s|%|B|KB|MB|TB|c)?"
                        r"(?:;[0-9.:~@-]*){0,4}$")


def _report(*names: str) -> Report:
    verdicts = tuple(
        TargetVerdict(Target(name, f"{i}.example", Expect.ANY), PathKind.GATEWAY,
                      Status.OK if i % 2 == 0 else Status.CRITICAL, "r",
                      dns=DnsAnswer(f"{i}.example", (ResolvedAddress("198.51.100.1", "ipv4", 60),),
                                    latency_ms=1.25))
        for i, name in enumerate(names))
    return Report(run_id="0" * 32, started=1_700_000_000.0, duration_seconds=0.2137,
                  identity=None, status=Status.CRITICAL, verdicts=verdicts,
                  facts=RunFacts(ec2_calls=4))


def test_perfdata_is_nagios_formatted() -> None:
    """Every item follows the plugin guidelines; labels with spaces are quoted."""
    data = perfdata(_report("regional", "odd name"))
    # Items are space separated; a quoted label may hold spaces.
    items = re.findall(r"(?:'(?:[^']|'')+'|[^' ]+)=\S*", data)
    assert " ".join(items) == data
    assert all(_PERF_ITEM.match(item) for item in items), items
    assert "duration=0.2137s;;;0" in items and "ec2_calls=4;;;0" in items
    assert "targets_ok=1;;2:;0;2" in items
    assert "regional_ok=1;;1:;0;1" in items and "'odd name_ok'=0;;1:;0;1" in items
    assert "regional_dns=0.00125s;;;0" in items


def test_perfdata_goes_after_the_first_line() -> None:
    text = with_perfdata("line one\nline two", _report("a"))
    assert text.startswith("line one | ") and text.endswith("\nline two")


def test_plugin_line_names_the_failing_targets() -> None:
    """Issue 12: ``S3ROUTE <STATUS> - <summary naming the failing targets>``."""
    from s3_route_agent.report.nagios import plugin_line, plugin_summary
    report = _report("regional", "legacy-global", "bucket", "bucket-global")
    assert plugin_line(report.status, plugin_summary(report)) == (
        "S3ROUTE CRITICAL - 2/4 target(s) not OK: legacy-global gateway (expected any); "
        "bucket-global gateway (expected any)")


def test_plugin_summary_is_bounded_and_says_how_many_are_left_out() -> None:
    from s3_route_agent.report.nagios import SUMMARY_MAX, plugin_summary
    many = _report(*[f"target-with-a-long-name-{i:02d}" for i in range(40)])
    summary = plugin_summary(many)
    assert summary.startswith("20/40 target(s) not OK: target-with-a-long-name-01 gateway")
    assert summary.endswith(" more)") and len(summary) <= SUMMARY_MAX + 40


def test_plugin_summary_when_all_is_well_or_nothing_was_checked() -> None:
    from s3_route_agent.report.nagios import plugin_summary
    ok = Report(run_id="0" * 32, started=0.0, duration_seconds=0.1, identity=None,
                status=Status.OK, verdicts=_report("a").verdicts)
    assert plugin_summary(ok) == "1/1 target(s) OK: a gateway"
    failed = Report(run_id="0" * 32, started=0.0, duration_seconds=0.1, identity=None,
                    status=Status.UNKNOWN, errors=("IMDS unreachable",))
    assert plugin_summary(failed) == "IMDS unreachable"
