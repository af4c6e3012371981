"""Helpers shared by several test modules (imported as ``support``: pyproject's pytest
``pythonpath`` puts tests/ on the path). Not fixtures: those live in conftest.py."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from s3_route_agent.config import AgentConfig
from s3_route_agent.report.document import Report
from s3_route_agent.runs.check import CheckDeps
from s3_route_agent.sinks.base import Sink
from s3_route_agent.wiring import Wiring


class MemorySink(Sink):
    """A sink that keeps every report it receives, in order: the redacted JSON documents (what a
    JSON sink ships) in ``reports`` and the typed reports in ``typed``."""

    name = "memory"

    def __init__(self) -> None:
        """Start empty."""
        self.reports: list[dict[str, Any]] = []
        self.typed: list[Report] = []

    def emit(self, report: Report) -> None:
        """Keep the report."""
        self.typed.append(report)
        self.reports.append(report.document)


def transfers_to(deps: CheckDeps, endpoint: str) -> CheckDeps:
    """``deps`` whose test transfers and oracle reads go to ``endpoint`` (the local moto server,
    path style) instead of the target's name: in the local environment the S3 names resolve to
    documentation addresses that must never receive traffic. Only loopback is accepted."""
    host = urlsplit(endpoint).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"refusing a non-loopback transfer endpoint {endpoint!r}")
    real = deps.s3_client_for

    def client_for(plan: Any, timeout: float) -> Any:
        return real(dataclasses.replace(plan, endpoint_url=endpoint, addressing_style="path"),
                    timeout)
    return dataclasses.replace(deps, s3_client_for=client_for)


class TransfersTo(Wiring):
    """The standard wiring, but every test transfer goes to ``endpoint`` (see transfers_to)."""

    def __init__(self, endpoint: str) -> None:
        """Transfers to ``endpoint``, a loopback URL."""
        self.endpoint = endpoint

    def check_deps(self, config: AgentConfig) -> CheckDeps:
        """The standard collectors, with the transfer client pointed at ``endpoint``."""
        return transfers_to(super().check_deps(config), self.endpoint)
