"""The sink interface: every enabled sink receives every report document."""

from __future__ import annotations

import abc
import logging
from typing import Any

logger = logging.getLogger(__name__)


class Sink(abc.ABC):
    """Where reports go. ``emit`` must not lose a report it accepted; errors are logged, not raised
    to the daemon loop (the daemon still guards every call)."""

    name: str = "sink"

    @abc.abstractmethod
    def emit(self, report: dict[str, Any]) -> None:
        """Deliver (or durably queue) one report."""

    def flush(self) -> None:
        """Push out anything buffered (called after each cycle and at shutdown)."""

    def close(self) -> None:
        """Flush and release files and clients."""
        self.flush()
