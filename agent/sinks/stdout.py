"""stdout sink: one JSON report per line (journald records it under the unit)."""

from __future__ import annotations

import logging
import sys
from typing import IO

from s3_route_agent.report.document import Report
from s3_route_agent.sinks.base import Sink

logger = logging.getLogger(__name__)


class StdoutSink(Sink):
    """Writes each report as one JSON line to stdout (or the given stream)."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        """Write to ``stream``; default the process's stdout at emit time."""
        self._stream = stream

    def emit(self, report: Report) -> None:
        """Print one line and flush, so a pipe reader sees it at once."""
        stream = self._stream or sys.stdout
        stream.write(report.to_json() + "\n")
        stream.flush()

    def flush(self) -> None:
        """Flush the stream."""
        (self._stream or sys.stdout).flush()
