"""The route index (parsed once per inventory) against the scan it replaced, on random tables:
the same winning route, prefix length, explanation and unknown prefix lists for every address,
including equal-length ties between static, prefix-list and propagated routes; and the
prefix-list CIDR set against the per-entry test of the security-group rules."""

from __future__ import annotations

import dataclasses
import ipaddress
import random

import pytest

from s3_route_agent.engine.filters import cidr_holds
from s3_route_agent.engine.model import (Inventory, PrefixList, Route, RouteOrigin, RouteTable,
                                         RouteTargetKind)
from s3_route_agent.engine.routes import (CidrSet, RouteIndex, route_for_address,
                                          scan_route_for_address)

TARGETS = [("local", RouteTargetKind.LOCAL), ("nat-1", RouteTargetKind.NAT_GATEWAY),
           ("igw-1", RouteTargetKind.INTERNET_GATEWAY), ("vpce-1", RouteTargetKind.GATEWAY_ENDPOINT),
           ("tgw-1", RouteTargetKind.TRANSIT_GATEWAY), ("vgw-1", RouteTargetKind.VIRTUAL_PRIVATE_GATEWAY),
           ("pcx-1", RouteTargetKind.PEERING_CONNECTION)]
ORIGINS = list(RouteOrigin)


def _cidr(rng: random.Random, version: int) -> str:
    """A CIDR in a small space (many overlaps and equal lengths), sometimes with host bits set
    (routes are read with strict=False), sometimes malformed."""
    if rng.random() < 0.02:
        return rng.choice(["not-a-cidr", "10.0.0.0/33", "::/129"])
    if version == 4:
        length = rng.choice([0, 8, 12, 16, 16, 20, 24, 24, 25, 28, 32])
        base = ipaddress.IPv4Address("10.0.0.0") + rng.randrange(0, 1 << 12) * 16
    else:
        length = rng.choice([0, 32, 48, 56, 64, 64, 128])
        base = ipaddress.IPv6Address("2001:db8::") + (rng.randrange(0, 1 << 8) << 64)
    return f"{base}/{length}"


def _table(rng: random.Random, routes: int, lists: int, entries: int) -> Inventory:
    plists = [PrefixList(f"pl-{i}", f"list-{i}", 1,
                         tuple(_cidr(rng, rng.choice((4, 4, 6))) for _ in range(entries)))
              for i in range(lists)]
    table = []
    for _ in range(routes):
        target, kind = rng.choice(TARGETS)
        origin = rng.choice(ORIGINS) if rng.random() < 0.3 else RouteOrigin.STATIC
        if rng.random() < 0.2:  # a prefix-list route, now and then to a list not fetched
            destination = f"pl-{rng.randrange(lists + 1)}"
        else:
            destination = _cidr(rng, rng.choice((4, 4, 6)))
        table.append(Route(destination, target, kind, origin,
                           "blackhole" if rng.random() < 0.05 else "active"))
        if rng.random() < 0.1:  # the same destination again with another origin: a tie
            table.append(Route(destination, "vgw-1", RouteTargetKind.VIRTUAL_PRIVATE_GATEWAY,
                               rng.choice(ORIGINS)))
    return Inventory("eu-west-1", "vpc-1", "subnet-1",
                     RouteTable("rtb-1", "vpc-1", "explicit", tuple(table)), tuple(plists),
                     (), ())


def _addresses(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        if rng.random() < 0.7:
            out.append(str(ipaddress.IPv4Address("10.0.0.0") + rng.randrange(0, 1 << 16)))
        elif rng.random() < 0.5:
            out.append(str(ipaddress.IPv6Address("2001:db8::") + (rng.randrange(0, 1 << 8) << 64)
                           + rng.randrange(0, 1 << 16)))
        else:
            out.append(rng.choice(["198.51.100.7", "2001:db9::1", "0.0.0.1"]))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_index_answers_as_the_scan(seed: int) -> None:
    rng = random.Random(seed)
    inv = _table(rng, routes=rng.randint(0, 60), lists=rng.randint(0, 3),
                 entries=rng.randint(0, 40))
    routes = inv.route_table.routes
    index = RouteIndex(routes, inv)
    matched = 0
    for ip in _addresses(rng, 150):
        expected = scan_route_for_address(ip, routes, inv)
        assert index.match(ip) == expected, ip
        assert route_for_address(ip, routes, inv) == expected
        assert inv.route_index.match(ip) == expected
        matched += expected[0] is not None
    if routes:
        assert matched  # the tables are dense enough that addresses do match


def test_equal_length_ties_follow_route_priority() -> None:
    """At equal length: static beats prefix-list beats propagated (DX, then VPN static, then
    VPN BGP), whatever the order of the routes in the table."""
    plist = PrefixList("pl-s3", "s3", 1, ("198.51.100.0/24",))
    routes = [Route("198.51.100.0/24", "vgw-bgp", RouteTargetKind.VIRTUAL_PRIVATE_GATEWAY,
                    RouteOrigin.PROPAGATED_VPN_BGP),
              Route("198.51.100.0/24", "vgw-static", RouteTargetKind.VIRTUAL_PRIVATE_GATEWAY,
                    RouteOrigin.PROPAGATED_VPN_STATIC),
              Route("198.51.100.0/24", "vgw-dx", RouteTargetKind.VIRTUAL_PRIVATE_GATEWAY,
                    RouteOrigin.PROPAGATED_DX),
              Route("pl-s3", "vpce-1", RouteTargetKind.GATEWAY_ENDPOINT),
              Route("198.51.100.0/24", "nat-1", RouteTargetKind.NAT_GATEWAY)]
    expected_winners = ["nat-1", "vpce-1", "vgw-dx", "vgw-static", "vgw-bgp"]
    remaining = list(routes)
    for winner in expected_winners:
        for order in (remaining, remaining[::-1]):
            inv = Inventory("eu-west-1", "vpc-1", "subnet-1",
                            RouteTable("rtb-1", "vpc-1", "explicit", tuple(order)), (plist,), (), ())
            match, _ = inv.route_index.match("198.51.100.10")
            assert match is not None and match.route.target_id == winner
            assert match == scan_route_for_address("198.51.100.10", order, inv)[0]
        remaining = [r for r in remaining if r.target_id != winner]


def test_index_is_built_once_per_inventory() -> None:
    inv = _table(random.Random(1), 30, 2, 20)
    assert inv.route_index is inv.route_index
    # A replaced inventory (another refresh) builds its own; equality ignores the cache.
    other = dataclasses.replace(inv)
    assert other == inv and other.route_index is not inv.route_index


@pytest.mark.parametrize("seed", range(10))
def test_cidr_set_answers_as_every_entry(seed: int) -> None:
    rng = random.Random(seed)
    cidrs = [_cidr(rng, rng.choice((4, 6))) for _ in range(rng.randint(0, 80))]
    entries = CidrSet(cidrs)
    for ip in _addresses(rng, 200) + ["not-an-ip"]:
        family = "ipv6" if ":" in ip else "ipv4"
        assert entries.holds(ip) == any(cidr_holds(c, ip, family) is True for c in cidrs), ip
    for family in ("ipv4", "ipv6"):
        held = [cidr_holds(c, None, family) for c in cidrs]
        assert (family in entries.whole_space) == any(h is True for h in held)
        assert (family in entries.families) == any(h is not False for h in held)
