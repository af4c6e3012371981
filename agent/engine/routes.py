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
import functools
import ipaddress
import logging
from dataclasses import dataclass
from typing import Iterable, Iterator, Union

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


@functools.lru_cache(maxsize=4)
def s3_range_index(ranges: tuple[S3Range, ...]) -> S3RangeIndex:
    """The :class:`S3RangeIndex` of ``ranges``, built once for the same ranges: a check builds
    it in the verdict and again for live evidence, every cycle, and ip-ranges.json holds
    hundreds of S3 ranges (a parse each)."""
    return S3RangeIndex(ranges)


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


class RouteIndex:
    """A route table's routes, with the CIDRs of the prefix lists they reference, parsed once.

    Built once per inventory (:attr:`Inventory.route_index`), then asked for each address: a
    lookup per distinct prefix length of the address's family (at most 33 or 129 dictionary
    probes) instead of parsing every route and prefix-list entry again for every address. The
    answer is exactly :func:`scan_route_for_address`'s (the three route-priority rules of the
    module docstring, the same winner and the same explanation; tests compare both on random
    tables): every matching candidate is collected, put back in table order (route order, then
    entry order within a prefix list), and chosen by the same rule.
    """

    def __init__(self, routes: Iterable[Route], inventory: Inventory) -> None:
        """Parse ``routes`` and the entries of the prefix lists they name (from ``inventory``)."""
        # family -> prefix length -> network as an integer -> candidates (table order, ...)
        self._by_length: dict[int, dict[int, dict[int, list[tuple[int, _Candidate]]]]] = {
            4: {}, 6: {}}
        unknown: list[str] = []
        for order, (route, net) in enumerate(_route_networks(routes, inventory, unknown)):
            by_network = self._by_length[net.version].setdefault(net.prefixlen, {})
            by_network.setdefault(int(net.network_address), []).append(
                (order, _Candidate(route, net.prefixlen, _route_rank(route), str(net))))
        self.unknown_prefix_lists: tuple[str, ...] = tuple(unknown)
        # Longest first; each with the mask that keeps its network bits.
        self._lengths: dict[int, list[tuple[int, int, dict[int, list[tuple[int, _Candidate]]]]]] = {}
        for version, by_length in self._by_length.items():
            bits = 32 if version == 4 else 128
            self._lengths[version] = [
                (length, ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1), by_length[length])
                for length in sorted(by_length, reverse=True)]

    def match(self, ip: str) -> tuple[RouteMatch | None, tuple[str, ...]]:
        """The route the VPC uses for ``ip``, and ids of prefix lists whose entries are unknown
        (as :func:`scan_route_for_address`)."""
        addr = ipaddress.ip_address(ip)
        value = int(addr)
        found: list[tuple[int, _Candidate]] = []
        for _, mask, by_network in self._lengths[addr.version]:  # rule 3: families apart
            hits = by_network.get(value & mask)
            if hits:
                found.extend(hits)
        if not found:
            return None, self.unknown_prefix_lists
        found.sort(key=lambda hit: hit[0])
        return _choose([c for _, c in found]), self.unknown_prefix_lists


def route_for_address(ip: str, routes: Iterable[Route], inventory: Inventory,
                      ) -> tuple[RouteMatch | None, tuple[str, ...]]:
    """The route the VPC uses for ``ip``, and ids of prefix lists whose entries are unknown.

    Implements the three route-priority rules of the module docstring. A prefix list whose
    entries were not fetched cannot be matched; its id is returned so the caller can say so.
    Builds a :class:`RouteIndex` for this one question: to ask for many addresses, use the
    inventory's own (:attr:`Inventory.route_index`), built once.
    """
    return RouteIndex(routes, inventory).match(ip)


def scan_route_for_address(ip: str, routes: Iterable[Route], inventory: Inventory,
                           ) -> tuple[RouteMatch | None, tuple[str, ...]]:
    """:func:`route_for_address` by scanning every route and prefix-list entry: the reference
    the index is tested against (its cost grows with routes + entries for every address)."""
    addr = ipaddress.ip_address(ip)
    candidates: list[_Candidate] = []
    unknown_lists: list[str] = []
    for route, net in _route_networks(routes, inventory, unknown_lists):
        if net.version == addr.version and addr in net:  # rule 3: families apart
            candidates.append(_Candidate(route, net.prefixlen, _route_rank(route), str(net)))
    if not candidates:
        return None, tuple(unknown_lists)
    return _choose(candidates), tuple(unknown_lists)


def _route_networks(routes: Iterable[Route], inventory: Inventory, unknown: list[str],
                    ) -> Iterator[tuple[Route, IPNetwork]]:
    """Each route with each network it covers, in table order: its CIDR, or every entry of the
    prefix list it names (an id whose entries are not known is appended to ``unknown``); a CIDR
    that does not parse covers nothing."""
    for route in routes:
        if route.is_prefix_list:
            plist = inventory.prefix_list(route.destination)
            if plist is None:
                unknown.append(route.destination)
                continue
            cidrs: Iterable[str] = plist.cidrs
        else:
            cidrs = (route.destination,)
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            yield route, net


def _choose(candidates: list[_Candidate]) -> RouteMatch:
    """The winner among the matching ``candidates`` (in table order): longest prefix, then
    rank (rules 1 and 2); the first of equals, as ``max`` keeps it."""
    best = max(candidates, key=lambda c: (c.prefix_length, c.rank))
    rivals = [c for c in candidates if c.route is not best.route]
    return RouteMatch(route=best.route, prefix_length=best.prefix_length,
                      rule=_explain_rule(best, rivals))


class CidrSet:
    """CIDRs (a prefix list's entries) as a set searchable by address, parsed once: does any
    of them hold an address? A probe per distinct prefix length, not a parse per entry."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        """Parse ``cidrs``; malformed ones are left out (they hold nothing)."""
        networks: dict[int, dict[int, set[int]]] = {4: {}, 6: {}}
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            networks[net.version].setdefault(net.prefixlen, set()).add(int(net.network_address))
        self._masks: dict[int, list[tuple[int, set[int]]]] = {}
        for version, by_length in networks.items():
            bits = 32 if version == 4 else 128
            self._masks[version] = [(((1 << bits) - 1) ^ ((1 << (bits - length)) - 1), nets)
                                    for length, nets in sorted(by_length.items())]
        self.families = frozenset("ipv4" if v == 4 else "ipv6"
                                  for v, by_length in networks.items() if by_length)
        self.whole_space = frozenset("ipv4" if v == 4 else "ipv6"
                                     for v, by_length in networks.items() if 0 in by_length)

    def holds(self, address: str) -> bool:
        """True when an entry holds ``address`` (False for a malformed address)."""
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return False
        value = int(addr)
        return any(value & mask in nets for mask, nets in self._masks[addr.version])


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


