"""`s3-route-agent demo` without the lab: the local environment's story, and what it skipped."""

from __future__ import annotations

import io

import s3_route_agent.devenv.lab.netns
from s3_route_agent.devenv.localenv.demo import run_demo


def test_demo_without_namespaces_runs_the_local_environment_and_says_why(monkeypatch):
    monkeypatch.setattr(s3_route_agent.devenv.lab.netns, "netns_available",
                        lambda: (False, "the lab needs root (network namespaces, veth pairs)"))
    out = io.StringIO()
    assert run_demo("text", out) == 0
    text = out.getvalue()
    assert "every target took the path the local world predicts" in text
    assert "# lab scenarios skipped: the lab needs root" in text
    assert "OK       regional" in text and "CRITICAL legacy-global" in text
