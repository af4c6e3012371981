"""The small vocabulary of the engine: path kinds, expectations, statuses. Pure.

Kept apart from :mod:`s3_route_agent.engine.model` (which re-exports every name) so that what
needs only these names — the config, the CLI's argument parser — loads no dataclass of the
model (issue 13: ``validate-config`` and ``--help`` under 150 ms).
"""

from __future__ import annotations

import enum


class PathKind(str, enum.Enum):
    """The network path traffic to an address (or a whole hostname) takes."""

    GATEWAY = "gateway"
    INTERFACE = "interface"
    PUBLIC = "public"
    TRANSIT = "transit"
    PROXY = "proxy"
    NO_ROUTE = "no_route"
    UNRESOLVED = "unresolved"
    UNKNOWN = "unknown"
    MIXED = "mixed"
    # The route exists but a security group, network ACL or VPC Block Public Access drops the
    # traffic (AddressVerdict.would_take says which path it would take, blocked_by what drops it).
    BLOCKED = "blocked"


# The paths that keep S3 traffic inside AWS's network through a VPC endpoint.
PRIVATE_PATHS = frozenset({PathKind.GATEWAY, PathKind.INTERFACE})
# The paths on which traffic reaches S3 at all (what ``expect: any`` accepts).
REACHING_PATHS = frozenset({PathKind.GATEWAY, PathKind.INTERFACE, PathKind.PUBLIC,
                            PathKind.TRANSIT, PathKind.PROXY})


class Expect(str, enum.Enum):
    """What the operator expects a target's path to be."""

    GATEWAY = "gateway"
    INTERFACE = "interface"
    PRIVATE = "private"
    PUBLIC = "public"
    ANY = "any"

    def allows(self, path: PathKind) -> bool:
        """True when traffic on ``path`` meets this expectation."""
        if self is Expect.ANY:
            return path in REACHING_PATHS
        if self is Expect.PRIVATE:
            return path in PRIVATE_PATHS
        return path.value == self.value

    @property
    def wants_private(self) -> bool:
        """True when only an endpoint path meets this expectation."""
        return self in (Expect.PRIVATE, Expect.GATEWAY, Expect.INTERFACE)


class Status(enum.IntEnum):
    """Nagios plugin status; the value is also the process exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @staticmethod
    def worst(statuses: "list[Status] | tuple[Status, ...]") -> "Status":
        """The most severe status; UNKNOWN ranks below CRITICAL as Nagios aggregators do."""
        order = (Status.OK, Status.WARNING, Status.UNKNOWN, Status.CRITICAL)
        if not statuses:
            return Status.OK
        return max(statuses, key=order.index)
