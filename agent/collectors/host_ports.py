"""This host's ephemeral (local) port range: the ports replies come back to, which network ACLs
must let in (they are stateless: VPC user guide, "Ephemeral ports",
https://docs.aws.amazon.com/vpc/latest/userguide/nacl-ephemeral-ports.html).

Linux keeps the range in ``/proc/sys/net/ipv4/ip_local_port_range`` ("LOW<tab>HIGH"; it applies
to IPv6 too, and is per network namespace). Anything unreadable or malformed is None: the engine
then judges replies against AWS's guidance range 1024-65535 and says the range is unknown.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

PORT_RANGE_PATH = Path("/proc/sys/net/ipv4/ip_local_port_range")


def read_ephemeral_port_range(path: Path | str = PORT_RANGE_PATH) -> tuple[int, int] | None:
    """``(low, high)`` from ``path``, or None when it cannot be read or makes no sense."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        logger.info("ephemeral port range unknown: %s", getattr(exc, "strerror", None) or exc)
        return None
    parts = text.split()
    try:
        low, high = (int(p) for p in parts)
    except ValueError:
        logger.warning("ignoring malformed port range %r in %s", text.strip()[:40], path)
        return None
    if not 0 < low <= high <= 65535:
        logger.warning("ignoring impossible port range %d-%d in %s", low, high, path)
        return None
    return low, high
