"""Issue 12: day-one defaults that do not page for nothing (engine/defaults.py), from tables."""

from __future__ import annotations

import pytest

from s3_route_agent.engine.defaults import default_target_status, judge_default_targets
from s3_route_agent.engine.model import Expect, PathKind, Status, Target, TargetVerdict
from s3_route_agent.engine.observed import ObservedName, ObservedSection


@pytest.mark.parametrize("status,origin,seen,expected", [
    # a default target nobody configured: CRITICAL only when the host is seen using it
    (Status.CRITICAL, "default", False, Status.WARNING),
    (Status.CRITICAL, "default", True, Status.CRITICAL),
    # other statuses are left alone (never made worse, never hide an UNKNOWN)
    (Status.OK, "default", False, Status.OK),
    (Status.WARNING, "default", False, Status.WARNING),
    (Status.UNKNOWN, "default", False, Status.UNKNOWN),
    # a target the user configured keeps its expect, used or not
    (Status.CRITICAL, "config", False, Status.CRITICAL),
    (Status.CRITICAL, "config", True, Status.CRITICAL),
    # a name the host was seen using is judged as such
    (Status.CRITICAL, "observed", False, Status.CRITICAL),
    (Status.CRITICAL, "observed", True, Status.CRITICAL),
])
def test_default_target_status(status: Status, origin: str, seen: bool,
                               expected: Status) -> None:
    assert default_target_status(status, origin, seen) is expected


def _verdict(host: str, origin: str, status: Status = Status.CRITICAL) -> TargetVerdict:
    return TargetVerdict(Target(host.split(".")[0], host, Expect.PRIVATE, origin=origin),
                         PathKind.PUBLIC, status, "public via nat-1; expected private",
                         evidence=("first",))


def _observed(*names: str) -> ObservedSection:
    return ObservedSection(expect=Expect.PRIVATE, time=1000.0, source="sock_diag",
                           names=tuple(ObservedName(n, ("203.0.113.10",), True, False, 1.0, 2.0)
                                       for n in names))


def test_unseen_default_becomes_warning_with_the_explanation() -> None:
    (got,) = judge_default_targets([_verdict("s3.amazonaws.com", "default")], _observed())
    assert got.status is Status.WARNING
    assert got.reason.endswith("(default target, not seen in use)")
    assert got.evidence[0] == "first"
    assert "s3.amazonaws.com is a default target" in got.evidence[1]
    assert "was not seen resolving or using it" in got.evidence[1]


def test_seen_default_stays_critical_the_unseen_one_does_not() -> None:
    verdicts = [_verdict("s3.amazonaws.com", "default"), _verdict("logs.s3.amazonaws.com",
                                                                  "default")]
    got = judge_default_targets(verdicts, _observed("s3.amazonaws.com"))
    assert [v.status for v in got] == [Status.CRITICAL, Status.WARNING]
    assert got[0] is verdicts[0]


def test_without_observation_nothing_is_seen_and_the_sentence_says_why() -> None:
    (got,) = judge_default_targets([_verdict("s3.amazonaws.com", "default")], None)
    assert got.status is Status.WARNING
    assert "observe.enabled: false" in got.evidence[-1]
    (kept,) = judge_default_targets([_verdict("s3.amazonaws.com", "config")], None)
    assert kept.status is Status.CRITICAL
