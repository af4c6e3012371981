"""Route matching: which route of a subnet's table a destination address takes. Pure.

Routing follows the VPC user guide, "Route priority"
(https://docs.aws.amazon.com/vpc/latest/userguide/route-tables.html#route-tables-priority):
1. the most specific route that matches the destination wins (longest prefix), counting the
   CIDRs inside a prefix list a route references;
2. on equal prefix length, static routes win over prefix-list routes, which win over propagated
   routes (Direct Connect BGP, then VPN static, then VPN BGP);
3. IPv4 and IPv6 routes are separate tables.

Also here: the S3 address ranges as an index searchable by address.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
from dataclasses import dataclass
from typing import Iterable, Union

from s3_route_agent.engine.model import Inventory, Route, RouteMatch, RouteOrigin, S3Range

logger = logging.getLogger(__name__)

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# Rank within one prefix length; higher wins (route priority rule 2 above).
_ORIGIN_RANK = {
    RouteOrigin.PROPAGATED_VPN_BGP: 1,
    RouteOrigin.PROPAGATED: 1,
    RouteOrigin.PROPAGATED_VPN_STATIC: 2,
    RouteOrigin.PROPAGATED_DX: 3,
}
_PREFIX_LIST_RANK = 4
_STATIC_RANK = 5

def address_family(ip: str) -> str:
    """``"ipv4"`` or ``"ipv6"`` for an address string."""
    return "ipv6" if ipaddress.ip_address(ip).version == 6 else "ipv4"


class S3RangeIndex:
    """S3 address ranges, searchable by address (longest match wins)."""

    def __init__(self, ranges: Iterable[S3Range]) -> None:
        """Index ``ranges``; malformed entries are skipped with a log line."""
        by_family: dict[int, list[tuple[int, int, int, str]]] = {4: [], 6: []}
        for entry in ranges:
            try:
                net = ipaddress.ip_network(entry.network, strict=False)
            except ValueError:
                logger.warning("ignoring malformed S3 range %r", entry.network)
                continue
            by_family[net.version].append((int(net.network_address), int(net.broadcast_address),
                                           net.prefixlen, entry.region))
        self._starts: dict[int, list[int]] = {}
        self._rows: dict[int, list[tuple[int, int, int, str]]] = {}
        for version, rows in by_family.items():
            rows.sort()
            self._rows[version] = rows
            self._starts[version] = [r[0] for r in rows]

    def region_for(self, ip: str) -> str | None:
        """The S3 region whose range holds ``ip`` (most specific range), or None."""
        addr = ipaddress.ip_address(ip)
        value = int(addr)
        rows = self._rows[addr.version]
        # Every range that holds the address starts at or before it; scan back over those.
        idx = bisect.bisect_right(self._starts[addr.version], value)
        best: tuple[int, str] | None = None
        for start, end, plen, region in reversed(rows[:idx]):
            if start <= value <= end and (best is None or plen > best[0]):
                best = (plen, region)
            # Ranges are at most /8 apart in practice; stop once far below any possible holder.
            if value - start > (1 << (addr.max_prefixlen - 8)):
                break
        return best[1] if best else None


@dataclass(frozen=True)
class _Candidate:
    route: Route
    prefix_length: int
    rank: int
    via_cidr: str


def _route_rank(route: Route) -> int:
    if route.origin is not RouteOrigin.STATIC:
        return _ORIGIN_RANK.get(route.origin, 1)
    return _PREFIX_LIST_RANK if route.is_prefix_list else _STATIC_RANK


def route_for_address(ip: str, routes: Iterable[Route], inventory: Inventory,
                      ) -> tuple[RouteMatch | None, tuple[str, ...]]:
    """The route the VPC uses for ``ip``, and ids of prefix lists whose entries are unknown.

    Implements the three route-priority rules of the module docstring. A prefix list whose
    entries were not fetched cannot be matched; its id is returned so the caller can say so.
    """
    addr = ipaddress.ip_address(ip)
    candidates: list[_Candidate] = []
    unknown_lists: list[str] = []
    for route in routes:
        if route.is_prefix_list:
            plist = inventory.prefix_list(route.destination)
            if plist is None:
                unknown_lists.append(route.destination)
                continue
            cidrs: Iterable[str] = plist.cidrs
        else:
            cidrs = (route.destination,)
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            if net.version == addr.version and addr in net:  # rule 3: families apart
                candidates.append(_Candidate(route, net.prefixlen, _route_rank(route), str(net)))
    if not candidates:
        return None, tuple(unknown_lists)
    best = max(candidates, key=lambda c: (c.prefix_length, c.rank))
    rivals = [c for c in candidates if c.route is not best.route]
    return RouteMatch(route=best.route, prefix_length=best.prefix_length,
                      rule=_explain_rule(best, rivals)), tuple(unknown_lists)


def _explain_rule(best: _Candidate, rivals: list[_Candidate]) -> str:
    via = (f"{best.route.destination} (entry {best.via_cidr})" if best.route.is_prefix_list
           else best.route.destination)
    if not rivals:
        return f"only matching route: {via} -> {best.route.target_id}"
    same_length = [r for r in rivals if r.prefix_length == best.prefix_length]
    if same_length:
        loser = max(same_length, key=lambda c: c.rank)
        return (f"{via} -> {best.route.target_id} wins at equal length /{best.prefix_length} "
                f"over {loser.route.destination} -> {loser.route.target_id}: "
                f"{_rank_name(best)} routes beat {_rank_name(loser)} routes")
    loser = max(rivals, key=lambda c: (c.prefix_length, c.rank))
    return (f"longest prefix: {via} -> {best.route.target_id} (/{best.prefix_length}) beats "
            f"{loser.route.destination} -> {loser.route.target_id} (/{loser.prefix_length})")


def _rank_name(candidate: _Candidate) -> str:
    if candidate.rank == _STATIC_RANK:
        return "static"
    if candidate.rank == _PREFIX_LIST_RANK:
        return "prefix-list"
    return candidate.route.origin.value.replace("_", " ")


