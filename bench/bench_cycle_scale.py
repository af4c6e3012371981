"""Benchmark (not a test): CPU of one check cycle as the route table, the prefix list and the
number of targets grow, with the route index (this tree) and with the scan it replaced.

The inventory is the local world's (collected from moto once: route table, S3 prefix list,
endpoints, security groups, network ACLs), then grown: N extra routes (random /20../28 CIDRs in
10.128.0.0/9 to transit and peering targets) and the S3 prefix list grown to M entries, with an
egress rule to the S3 prefix list on this host's security group. Each cycle is ``run_check`` as
the daemon runs it, minus the network: the identity and DNS answers are given (two addresses per
target, in S3's ranges of eu-west-1 and us-east-1), the inventory is read from the cache file
each cycle, transfer and observation are off. Reports are rendered as the sinks do
(``Report.to_json``). CPU is ``time.process_time`` per cycle (median of the rounds).

    .venv/bin/python bench/bench_cycle_scale.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from s3_route_agent.collectors.inventory_cache import InventoryCache
from s3_route_agent.config import load_config
from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from s3_route_agent.engine import routes as engine_routes
from s3_route_agent.engine.model import (DnsAnswer, Inventory, ResolvedAddress, Route,
                                         RouteOrigin, RouteTargetKind, SecurityGroupRule)
from s3_route_agent.errors import InventoryError
from s3_route_agent.runs.check import CheckDeps, run_check
from s3_route_agent.wiring import Wiring


def grown(inventory: Inventory, routes: int, entries: int, rng: random.Random) -> Inventory:
    """``inventory`` with ``routes`` more routes and its S3 prefix list at ``entries`` entries."""
    table = inventory.route_table
    assert table is not None
    kinds = [("tgw-0bench", RouteTargetKind.TRANSIT_GATEWAY),
             ("pcx-0bench", RouteTargetKind.PEERING_CONNECTION)]
    extra = []
    for _ in range(routes):
        length = rng.randint(20, 28)
        base = int(ipaddress.IPv4Address("10.128.0.0")) + rng.randrange(1 << 23)
        net = ipaddress.ip_network(f"{ipaddress.IPv4Address(base)}/{length}", strict=False)
        target, kind = rng.choice(kinds)
        extra.append(Route(str(net), target, kind, RouteOrigin.STATIC))
    lists = []
    for plist in inventory.prefix_lists:
        if plist.id == inventory.s3_prefix_list_id:
            cidrs = list(plist.cidrs)
            while len(cidrs) < entries:
                base = int(ipaddress.IPv4Address("52.0.0.0")) + rng.randrange(1 << 26)
                cidrs.append(str(ipaddress.ip_network(f"{ipaddress.IPv4Address(base)}/24",
                                                      strict=False)))
            plist = dataclasses.replace(plist, cidrs=tuple(cidrs))
        lists.append(plist)
    filters = inventory.traffic_filters
    if filters is not None and filters.host_security_group_ids:
        rule = SecurityGroupRule(filters.host_security_group_ids[0], "sgr-0bench", True, "tcp",
                                 443, 443, prefix_list_id=inventory.s3_prefix_list_id)
        filters = dataclasses.replace(filters, security_group_rules=(
            rule,) + filters.security_group_rules)
    return dataclasses.replace(
        inventory, route_table=dataclasses.replace(table, routes=table.routes + tuple(extra)),
        prefix_lists=tuple(lists), traffic_filters=filters)


class ScanIndex:
    """The old matching, behind the index's interface: a scan of every route and entry."""

    def __init__(self, routes: Any, inventory: Inventory) -> None:
        self.routes, self.inventory = tuple(routes), inventory

    def match(self, ip: str) -> Any:
        return engine_routes.scan_route_for_address(ip, self.routes, self.inventory)


def cycle_cpu(config: Any, deps: CheckDeps, rounds: int) -> float:
    """Median CPU milliseconds of one cycle (run_check and the JSON report)."""
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        result = run_check(config, deps)
        result.report.to_json()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    """Print CPU per cycle for each size, index and scan."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import os
    os.environ.update(safe_environ())
    rng = random.Random(13)
    with LocalEnvironment() as env, tempfile.TemporaryDirectory() as tmp:
        config_path = env.write_config(Path(tmp) / "c.yaml", state_dir=str(Path(tmp) / "s"))
        config = load_config(config_path)
        real = Wiring().check_deps(config)
        first = run_check(config, real)
        assert first.facts is not None and first.facts.inventory is not None
        identity, base = first.facts.identity, first.facts.inventory
        ranges = real.s3_ranges()
    assert identity is not None

    def no_ec2(_region: str) -> Any:
        raise InventoryError("unreachable", "the benchmark makes no EC2 call", "-")

    rows = []
    for targets, routes, entries in ((5, 0, 0), (50, 0, 0), (200, 0, 0), (200, 1000, 1000)):
        inventory = grown(base, routes, entries, rng) if routes or entries else base
        hosts = [f"b{i}.s3.{identity.region}.amazonaws.com" for i in range(targets)]
        answers = {h: DnsAnswer(h, (ResolvedAddress(f"198.51.100.{10 + i % 100}", "ipv4", 60),
                                    ResolvedAddress(f"203.0.113.{10 + i % 100}", "ipv4", 60)))
                   for i, h in enumerate(hosts)}
        with tempfile.TemporaryDirectory() as state:
            cache = InventoryCache(Path(state), identity.region, identity.vpc_id,
                                   identity.subnet_id, ttl_seconds=10 ** 9)
            cache.store(dataclasses.replace(inventory, fetched_at=time.time()))
            cfg = dataclasses.replace(
                config, targets=(), buckets=(), state_dir=state,
                observe=dataclasses.replace(config.observe, enabled=False))
            cfg = dataclasses.replace(cfg, targets=tuple(
                dataclasses.replace(config.targets[0], name=f"t{i}", host=h, bucket=None)
                for i, h in enumerate(hosts)))
            deps = CheckDeps(identity=lambda: identity, resolve=lambda h: answers[h],
                             ec2_client=no_ec2, s3_ranges=lambda: ranges,
                             s3_client_for=real.s3_client_for, cache_for=lambda _i: cache)
            report = run_check(cfg, deps).report
            assert report.facts.ec2_calls == 0 and len(report.verdicts) == targets
            indexed = cycle_cpu(cfg, deps, args.rounds)
            saved = Inventory.__dict__["route_index"]
            try:  # the scan it replaced, for the same cycle
                setattr(Inventory, "route_index", property(
                    lambda inv: ScanIndex(inv.route_table.routes if inv.route_table else (), inv)))
                scanned = cycle_cpu(cfg, deps, max(1, args.rounds // 2))
            finally:
                setattr(Inventory, "route_index", saved)
        rows.append((targets, len(inventory.route_table.routes),
                     max(len(p.cidrs) for p in inventory.prefix_lists), indexed, scanned))
    print(f"one cycle (run_check + JSON report), CPU ms, median of {args.rounds} rounds; "
          f"2 addresses per target, inventory read from its cache file each cycle")
    print(f"  {'targets':>7} {'routes':>6} {'PL entries':>10} {'index':>9} {'scan':>9}")
    for targets, routes, entries, indexed, scanned in rows:
        print(f"  {targets:7d} {routes:6d} {entries:10d} {indexed:9.1f} {scanned:9.1f}")
    small = {r[0]: r[3] for r in rows if r[1] < 100}
    print(f"  per extra target (5 -> 200 targets, small table): "
          f"{(small[200] - small[5]) / 195:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
