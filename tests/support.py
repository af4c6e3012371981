"""Helpers shared by several test modules (imported as ``support``: pytest puts tests/ on the
path). Not fixtures: those live in conftest.py."""

from __future__ import annotations

from typing import Any

from s3_route_agent.sinks.base import Sink


class MemorySink(Sink):
    """A sink that keeps every report it receives, in order."""

    name = "memory"

    def __init__(self) -> None:
        """Start empty."""
        self.reports: list[dict[str, Any]] = []

    def emit(self, report: dict[str, Any]) -> None:
        """Keep the report."""
        self.reports.append(report)
