"""The sink interface: every enabled sink receives every report."""

from __future__ import annotations

import abc
import logging
from typing import Optional

from s3_route_agent.report.document import Report

logger = logging.getLogger(__name__)


class Sink(abc.ABC):
    """Where reports go. ``emit`` must not lose a report it accepted; errors are logged, not raised
    to the daemon loop (the daemon still guards every call)."""

    name: str = "sink"

    @abc.abstractmethod
    def emit(self, report: Report) -> None:
        """Deliver (or durably queue) one report (JSON sinks write ``report.document``, the
        redacted JSON document; metric sinks read the typed fields)."""

    def flush(self) -> None:
        """Push out anything buffered (called after each cycle and at shutdown)."""

    def close(self, timeout: Optional[float] = None) -> None:
        """Flush and release files and clients, within ``timeout`` seconds when given (the
        daemon's stop budget): a sink that ships over the network leaves what it could not
        send in time for the next start."""
        self.flush()
