"""The route check between inventory refreshes (issue 13), against moto over HTTP: while the
facts are cached, one DescribeRouteTables call every ``inventory.route_check_seconds``; an
unchanged table keeps the cache (and is recorded, so the next cycle asks nothing), a changed one
fetches every fact again, and a failed check keeps the cached facts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import boto3

from s3_route_agent.collectors.inventory_cache import InventoryCache
from s3_route_agent.config import load_config
from s3_route_agent.devenv.localenv.environment import LocalEnvironment
from s3_route_agent.errors import InventoryError
from s3_route_agent.runs.check import run_check
from s3_route_agent.wiring import Wiring


def test_route_check_keeps_or_refreshes_the_cache(tmp_path: Path) -> None:
    now = [1_000_000.0]
    with LocalEnvironment() as env:
        config = load_config(env.write_config(
            tmp_path / "c.yaml", state_dir=str(tmp_path / "state"), buckets=[],
            inventory={"ttl_seconds": 14400, "route_check_seconds": 900,
                       "ttl_jitter_fraction": 0}))
        real = Wiring().check_deps(config)

        def cache_for(ident):  # the wiring's cache, on the test's clock
            return InventoryCache(Path(config.state_dir), ident.region, ident.vpc_id,
                                  ident.subnet_id, ttl_seconds=14400, clock=lambda: now[0])
        deps = dataclasses.replace(real, cache_for=cache_for, clock=lambda: now[0])

        def run(at: float) -> tuple[str, int, object]:
            now[0] = 1_000_000.0 + at
            report = run_check(config, deps).report
            return report.facts.inventory_source, report.facts.ec2_calls, report

        source, calls, _ = run(0)
        assert source == "api" and calls >= 7                 # cold
        assert run(60)[:2] == ("cache", 0)                    # within the check interval
        assert run(1000)[:2] == ("cache", 1)                  # the check: one call, unchanged
        assert run(1060)[:2] == ("cache", 0)                  # recorded: nothing asked
        # A route added to the subnet's table: the next check sees it and refreshes everything.
        ec2 = boto3.client("ec2", region_name=env.ids.region, endpoint_url=env.moto.endpoint_url)
        ec2.create_route(RouteTableId=env.ids.app_route_table_id,
                         DestinationCidrBlock="203.0.113.0/24", NatGatewayId=env.ids.nat_gateway_id)
        assert run(1200)[:2] == ("cache", 0)                  # not due yet: unseen for now
        source, calls, report = run(2000)
        assert source == "api" and calls >= 8                 # the check plus a full refresh
        routes = report.identity and cache_for(report.identity).load().inventory.route_table.routes
        assert "203.0.113.0/24" in {r.destination for r in routes}
        assert run(2060)[:2] == ("cache", 0)

        # A failed check (throttled) keeps the cached facts and asks again next time.
        def throttled(_region: str):
            raise InventoryError("throttled", "EC2 DescribeRouteTables throttled")
        deps = dataclasses.replace(deps, ec2_client=throttled)
        assert run(3000)[:2] == ("cache", 0)
        deps = dataclasses.replace(deps, ec2_client=real.ec2_client)
        assert run(3060)[:2] == ("cache", 1)


def test_no_route_check_when_off(tmp_path: Path) -> None:
    now = [2_000_000.0]
    with LocalEnvironment() as env:
        config = load_config(env.write_config(
            tmp_path / "c.yaml", state_dir=str(tmp_path / "state"), buckets=[],
            inventory={"route_check_seconds": 0}))
        real = Wiring().check_deps(config)
        deps = dataclasses.replace(real, clock=lambda: now[0], cache_for=lambda ident: (
            InventoryCache(Path(config.state_dir), ident.region, ident.vpc_id, ident.subnet_id,
                           ttl_seconds=config.inventory.ttl_seconds, clock=lambda: now[0])))
        assert run_check(config, deps).report.facts.inventory_source == "api"
        now[0] += 5000
        facts = run_check(config, deps).report.facts
        assert (facts.inventory_source, facts.ec2_calls) == ("cache", 0)
