"""The lab scenarios: each sets the lab up, runs the agent in the host namespace, and states the
verdict and evidence it must produce. Shared by ``tests/test_lab.py`` and ``s3-route-agent demo``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from s3_route_agent.devenv.lab import lab as lab_module
from s3_route_agent.devenv.lab.lab import Lab
from s3_route_agent.devenv.localenv.environment import DEMO_BUCKET
from s3_route_agent.report.document import render_json

logger = logging.getLogger(__name__)

BUCKET_REGIONAL = {"name": "bucket-regional", "host": "{bucket}.s3.{region}.amazonaws.com",
                   "bucket": DEMO_BUCKET}
BUCKET_GLOBAL = {"name": "bucket-global", "host": "{bucket}.s3.amazonaws.com",
                 "bucket": DEMO_BUCKET}
S3_EU_BUCKET_IP = lab_module.S3_EU_ADDRESSES[1]    # *.s3.eu-west-1 -> 198.51.100.11
S3_US_BUCKET_IP = lab_module.S3_US_ADDRESSES[1]    # *.s3.amazonaws.com -> 203.0.113.11


@dataclass(frozen=True)
class Expected:
    """What one target must show in one run."""

    path: str
    status: str
    peer: str | None                 # the transfer's peer address (None: no transfer expected)
    nat_hop: bool = False            # traceroute crosses the NAT gateway (10.0.0.5)
    refresh: bool = False            # reconciliation asks for an inventory refresh
    # The path S3 itself states through the oracle (s3_route_agent.devenv.lab.labd answers as S3 would: the
    # gateway namespace serves oracle/<gateway vpce> to VPC clients and oracle/public to the
    # NAT's public address, the ENI namespace oracle/<interface vpce>, us-east-1 oracle/public).
    oracle: str | None = None
    # The transfer's outcome: "ok" (with ``peer``), or "network_error" for a blocked path whose
    # connection never completes (then no peer and no canary to delete).
    transfer_outcome: str = "ok"
    would_take: str | None = None    # for a blocked path: the path its route would take


@dataclass(frozen=True)
class ExpectedFlow:
    """What one connection of the lab's flow client must show in the report's ``observed``."""

    path: str
    status: str
    min_bytes_sent: int              # at least the payload the client sent
    region: str
    via_nat: bool = False


@dataclass(frozen=True)
class Run:
    """One agent run of a scenario: optional change before it, and what each target must show
    (and, for the host's own traffic, each flow by remote address, and the overall status)."""

    expected: dict[str, Expected]
    before: Callable[[Lab], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    flows: dict[str, ExpectedFlow] = field(default_factory=dict)
    status: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A named situation of the lab."""

    name: str
    title: str
    targets: Callable[[Lab], list[dict[str, Any]]]
    runs: tuple[Run, ...]
    setup: Callable[[Lab], None] | None = None
    teardown: Callable[[Lab], None] | None = None
    transfer_timeout: float = 20     # a blocked path waits this long per request


def _t(base: dict[str, Any], expect: str) -> dict[str, Any]:
    return {**base, "expect": expect}


def _interface_target(lab: Lab) -> dict[str, Any]:
    return {"name": "vpce-name", "host": lab.interface_host(), "expect": "interface",
            "bucket": DEMO_BUCKET}


PROXY_URL = f"http://{lab_module.PROXY_IP}:{lab_module.PROXY_PORT}"
GATEWAY_FLOW_BYTES = 200_000
NAT_FLOW_BYTES = 300_000


def _start_flows(lab: Lab) -> None:
    lab.start_flow_client([f"{S3_EU_BUCKET_IP}:{GATEWAY_FLOW_BYTES}",
                           f"{S3_US_BUCKET_IP}:{NAT_FLOW_BYTES}"])

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("gateway", "Gateway endpoint: the regional name takes vpce via the prefix-list route",
             lambda lab: [_t(BUCKET_REGIONAL, "gateway")],
             (Run({"bucket-regional": Expected("gateway", "OK", S3_EU_BUCKET_IP,
                                               oracle="gateway")}),)),
    Scenario("interface-private-dns",
             "Interface endpoint with private DNS: the regional name resolves to the ENI",
             lambda lab: [_t(BUCKET_REGIONAL, "interface")],
             (Run({"bucket-regional": Expected("interface", "OK", lab_module.ENI_IP,
                                               oracle="interface")}),),
             setup=lambda lab: lab.set_private_dns(True),
             teardown=lambda lab: lab.set_private_dns(False)),
    Scenario("interface-no-private-dns",
             "Interface endpoint without private DNS: only the vpce names are private",
             lambda lab: [_interface_target(lab), _t(BUCKET_REGIONAL, "interface")],
             (Run({"vpce-name": Expected("interface", "OK", lab_module.ENI_IP,
                                         oracle="interface"),
                   "bucket-regional": Expected("gateway", "CRITICAL", S3_EU_BUCKET_IP,
                                               oracle="gateway")}),)),
    Scenario("public-via-nat", "No endpoint route on the subnet: public via the NAT gateway",
             lambda lab: [_t(BUCKET_REGIONAL, "gateway")],
             (Run({"bucket-regional": Expected("public", "CRITICAL", S3_EU_BUCKET_IP,
                                               nat_hop=True, oracle="public")}),),
             setup=lambda lab: lab.remove_gateway_route(),
             teardown=lambda lab: lab.restore_gateway_route()),
    Scenario("legacy-global",
             "Legacy global name from a VPC in eu-west-1: us-east-1 S3, public via NAT",
             lambda lab: [_t(BUCKET_GLOBAL, "private")],
             (Run({"bucket-global": Expected("public", "CRITICAL", S3_US_BUCKET_IP,
                                             nat_hop=True, oracle="public")}),)),
    Scenario("route-removed-between-runs",
             "Endpoint route removed between two runs: the cached verdict meets contrary "
             "evidence; S3 itself (the path oracle) states the public path, so the target is "
             "CRITICAL at once, and the agent refreshes",
             lambda lab: [_t(BUCKET_REGIONAL, "gateway")],
             (Run({"bucket-regional": Expected("gateway", "OK", S3_EU_BUCKET_IP,
                                               oracle="gateway")}),
              Run({"bucket-regional": Expected("gateway", "CRITICAL", S3_EU_BUCKET_IP,
                                               nat_hop=True, refresh=True, oracle="public")},
                  before=lambda lab: lab.remove_gateway_route()),
              Run({"bucket-regional": Expected("public", "CRITICAL", S3_EU_BUCKET_IP,
                                               nat_hop=True, oracle="public")})),
             teardown=lambda lab: lab.restore_gateway_route()),
    Scenario("https-proxy", "HTTPS_PROXY set: S3 traffic goes through the proxy, bypassing the "
             "gateway endpoint",
             lambda lab: [_t(BUCKET_REGIONAL, "gateway")],
             # The proxy's own egress takes the gateway endpoint: S3 says so through the oracle.
             (Run({"bucket-regional": Expected("proxy", "CRITICAL", lab_module.PROXY_IP,
                                               oracle="gateway")},
                  # As on a real host: IMDS and the local EC2 API are exempt from the proxy.
                  env={"HTTPS_PROXY": PROXY_URL, "NO_PROXY": "127.0.0.1,169.254.169.254"}),)),
    Scenario("observed-traffic",
             "The host's own S3 traffic: a process holds a connection to S3 eu-west-1 (gateway "
             "endpoint) and one to S3 us-east-1 through the NAT gateway; check names it, its "
             "bytes and both paths, and the public one makes the run CRITICAL",
             lambda lab: [_t(BUCKET_REGIONAL, "gateway")],
             (Run({"bucket-regional": Expected("gateway", "OK", S3_EU_BUCKET_IP,
                                               oracle="gateway")},
                  flows={S3_EU_BUCKET_IP: ExpectedFlow("gateway", "OK", GATEWAY_FLOW_BYTES,
                                                       "eu-west-1"),
                         S3_US_BUCKET_IP: ExpectedFlow("public", "CRITICAL", NAT_FLOW_BYTES,
                                                       "us-east-1", via_nat=True)},
                  status="CRITICAL"),),
             setup=_start_flows, teardown=lambda lab: lab.stop_flow_client()),
    Scenario("block-public-access",
             "VPC Block Public Access bidirectional: the NAT route is blocked (the transfer "
             "fails, as the verdict says); the gateway endpoint is not touched",
             lambda lab: [_t(BUCKET_GLOBAL, "private"), _t(BUCKET_REGIONAL, "gateway")],
             (Run({"bucket-global": Expected("blocked", "CRITICAL", None, nat_hop=True,
                                             transfer_outcome="network_error",
                                             would_take="public"),
                   "bucket-regional": Expected("gateway", "OK", S3_EU_BUCKET_IP,
                                               oracle="gateway")}),),
             setup=lambda lab: lab.set_block_public_access("block-bidirectional"),
             teardown=lambda lab: lab.set_block_public_access("off"),
             transfer_timeout=3),
)


@dataclass
class RunResult:
    """One run's report and every way it differs from the expectation."""

    scenario: str
    index: int
    exit_code: int
    report: dict[str, Any]
    text: str
    mismatches: list[str]


def check_expectations(report: dict[str, Any], expected: dict[str, Expected]) -> list[str]:
    """Every difference between a report and what the scenario expects (empty: as expected)."""
    problems: list[str] = []
    targets = {t["name"]: t for t in report.get("targets", [])}
    for name, want in expected.items():
        got = targets.get(name)
        if got is None:
            problems.append(f"{name}: missing from the report")
            continue
        if got["path"] != want.path:
            problems.append(f"{name}: path {got['path']}, expected {want.path}")
        if got["status"] != want.status:
            problems.append(f"{name}: status {got['status']}, expected {want.status}")
        transfer = got.get("transfer") or {}
        if want.would_take is not None and got.get("would_take") != want.would_take:
            problems.append(f"{name}: would_take {got.get('would_take')}, expected "
                            f"{want.would_take}")
        if want.transfer_outcome != "ok" and transfer.get("outcome") != want.transfer_outcome:
            problems.append(f"{name}: transfer {transfer.get('outcome')}, expected "
                            f"{want.transfer_outcome}: {transfer.get('message')}")
        if want.peer is not None:
            if transfer.get("peer_address") != want.peer:
                problems.append(f"{name}: transfer peer {transfer.get('peer_address')}, "
                                f"expected {want.peer}")
            if transfer.get("outcome") != "ok":
                problems.append(f"{name}: transfer {transfer.get('outcome')}: "
                                f"{transfer.get('message')}")
            if transfer.get("canary_deleted") is not True:
                problems.append(f"{name}: canary not deleted")
        trace = ((got.get("probe") or {}).get("traceroute") or {})
        if not trace.get("skipped"):
            crossed = lab_module.NAT_IP in (trace.get("intermediate_hops") or [])
            if crossed != want.nat_hop:
                problems.append(f"{name}: NAT hop {'seen' if crossed else 'not seen'}, expected "
                                f"{'one' if want.nat_hop else 'none'} (hops {trace.get('hops')})")
        if want.oracle is not None:
            oracle = got.get("oracle") or {}
            if oracle.get("path") != want.oracle or not oracle.get("conclusive"):
                problems.append(f"{name}: oracle says {oracle.get('path')} "
                                f"({oracle.get('kind')}: {oracle.get('evidence')}), expected "
                                f"{want.oracle}")
        refresh = (got.get("reconcile") or {}).get("refresh_inventory", False)
        if refresh != want.refresh:
            problems.append(f"{name}: refresh_inventory {refresh}, expected {want.refresh}")
    return problems


def check_flows(report: dict[str, Any], run: Run, lab: Lab) -> list[str]:
    """Every difference between the report's ``observed`` flows (and status) and the run's."""
    problems: list[str] = []
    if run.status is not None and report.get("status") != run.status:
        problems.append(f"status {report.get('status')}, expected {run.status}")
    if not run.flows:
        return problems
    pid = lab.flow_client.get("pid")
    flows = {f["remote_ip"]: f for f in (report.get("observed") or {}).get("flows", [])
             if (f.get("process") or {}).get("pid") == pid}
    for remote, want in run.flows.items():
        got = flows.get(remote)
        if got is None:
            problems.append(f"flow of pid {pid} to {remote}: missing from observed")
            continue
        for key, value in (("path", want.path), ("status", want.status),
                           ("s3_region", want.region), ("through_nat", want.via_nat)):
            if got.get(key) != value:
                problems.append(f"flow to {remote}: {key} {got.get(key)}, expected {value}")
        if (got.get("bytes_sent") or 0) < want.min_bytes_sent:
            problems.append(f"flow to {remote}: {got.get('bytes_sent')} bytes sent, expected "
                            f"at least {want.min_bytes_sent}")
    bad = [f for f in run.flows.values() if f.status == "CRITICAL"]
    if bad and f"(pid {pid}) -> " not in report.get("summary", ""):
        problems.append(f"summary does not name the process: {report.get('summary')}")
    return problems


def run_scenario(lab: Lab, scenario: Scenario) -> list[RunResult]:
    """Run every agent run of ``scenario`` in ``lab`` (its own config and state dir)."""
    results: list[RunResult] = []
    config = lab.agent_config(scenario.name, scenario.targets(lab),
                              transfer_timeout=scenario.transfer_timeout)
    if scenario.setup:
        scenario.setup(lab)
    try:
        for index, run in enumerate(scenario.runs):
            if run.before:
                run.before(lab)
            env = lab.env(**run.env) if run.env else None
            done = lab.run_agent(config, env=env)
            results.append(RunResult(scenario.name, index, done.exit_code, done.report,
                                     done.text, check_expectations(done.report, run.expected)
                                     + check_flows(done.report, run, lab)))
    finally:
        if scenario.teardown:
            scenario.teardown(lab)
    return results


def run_lab_demo(out: TextIO = sys.stdout, output_format: str = "text") -> int:
    """Build the lab, run every scenario, print each report, tear down; 0 when all as expected."""
    failures = 0
    with Lab() as lab:
        print(f"# lab {lab.prefix}: namespaces {', '.join(lab.created)}; isolation checked "
              "(only lab links, no default route, lab addresses only)", file=out)
        for scenario in SCENARIOS:
            for result in run_scenario(lab, scenario):
                print(f"\n## scenario {scenario.name} (run {result.index + 1}): {scenario.title}",
                      file=out)
                print(render_json(result.report) if output_format == "json"
                      else result.text.rstrip("\n"), file=out)
                if result.mismatches:
                    failures += 1
                    for problem in result.mismatches:
                        print(f"demo: {scenario.name}: {problem}", file=out)
                else:
                    print(f"# scenario {scenario.name} run {result.index + 1}: as expected",
                          file=out)
    left = lab_module.leftovers(lab.prefix)
    print(f"\n# lab torn down: {len(left)} namespace(s) and {len(lab.alive_pids())} process(es) "
          "left", file=out)
    return 1 if failures or left else 0
