"""End to end: ``check`` reports the host's real S3 flows, in a network namespace of the test's.

The test namespace carries S3 stand-in addresses of the local world on ``lo`` (198.51.100.10,
in eu-west-1's S3 prefix list: the gateway path; 203.0.113.10, S3 us-east-1: public via the NAT
gateway), a server listening on 443 of both, and a client process that sent known byte counts to
each and holds the connections. ``check`` runs with the standard wiring against the local
environment; only its observer looks inside the namespace (the sock_diag socket is opened there).
Needs root; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from support import ObservesNamespace, can_make_namespaces, namespace_with_flows

from s3_route_agent.cli import main
from s3_route_agent.devenv.localenv.environment import GLOBAL_S3_IP, REGIONAL_S3_IP
from s3_route_agent.report.document import report_schema

AVAILABLE, WHY = can_make_namespaces()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"test namespaces unavailable: {WHY}")

GATEWAY_BYTES = 300_000
PUBLIC_BYTES = 500_000
TARGETS = [{"name": "regional", "host": "s3.{region}.amazonaws.com", "expect": "private"},
           # expect any: the target itself is fine; only the host's own flow is off the path
           {"name": "global", "host": "s3.amazonaws.com", "expect": "any"}]


@pytest.fixture
def flows():
    with namespace_with_flows([REGIONAL_S3_IP, GLOBAL_S3_IP],
                              [f"{REGIONAL_S3_IP}:{GATEWAY_BYTES}",
                               f"{GLOBAL_S3_IP}:{PUBLIC_BYTES}"]) as ns:
        yield ns


def _check(local_env, tmp_path: Path, wiring, name: str = "r") -> tuple[int, dict]:
    config = local_env.write_config(tmp_path / "agent.yaml", targets=TARGETS,
                                    state_dir=str(tmp_path / "state"), observe={"enabled": True})
    report_file = tmp_path / f"{name}.json"
    code = main(["check", "--config", str(config), "--format", "text", "--report-file",
                 str(report_file)], wiring=wiring)
    return code, json.loads(report_file.read_text())


def _by_remote(report: dict) -> dict:
    return {f["remote_ip"]: f for f in report["observed"]["flows"]}


def test_check_reports_both_flows_with_pid_bytes_paths_and_critical(local_env, tmp_path, flows,
                                                                     capsys):
    code, report = _check(local_env, tmp_path, ObservesNamespace(flows.name, flows.proc_net))
    jsonschema.validate(report, report_schema())
    found = _by_remote(report)
    assert set(found) == {REGIONAL_S3_IP, GLOBAL_S3_IP}
    comm = Path(f"/proc/{flows.client_pid}/comm").read_text().strip()
    ids = local_env.ids
    gateway, public = found[REGIONAL_S3_IP], found[GLOBAL_S3_IP]
    for flow, sent in ((gateway, GATEWAY_BYTES), (public, PUBLIC_BYTES)):
        assert flow["process"] == {"pid": flows.client_pid, "name": comm, "uid": 0}
        assert flow["bytes_sent"] >= sent            # tcpi_bytes_acked: the payload, + the SYN
        assert flow["new_bytes"] >= sent
        assert flow["own"] is False and flow["state"] == "ESTABLISHED"
        assert flow["local_ip"] == "10.0.1.10" and flow["remote_port"] == 443
    assert gateway["path"] == "gateway" and gateway["status"] == "OK"
    assert gateway["endpoint_id"] == ids.gateway_endpoint_id
    assert gateway["s3_region"] == "eu-west-1" and gateway["hostname"] == "s3.eu-west-1.amazonaws.com"
    assert public["path"] == "public" and public["status"] == "CRITICAL"
    assert public["via"] == ids.nat_gateway_id and public["through_nat"] is True
    assert public["s3_region"] == "us-east-1" and public["hostname"] == "s3.amazonaws.com"
    # The targets are as expected; the host's own public flow makes the run CRITICAL.
    assert [t["status"] for t in report["targets"]] == ["OK", "OK"]
    assert report["status"] == "CRITICAL" and code == 2
    assert report["summary"] == (f"CRITICAL: {comm} (pid {flows.client_pid}) -> {GLOBAL_S3_IP} "
                                 f"(s3.amazonaws.com) S3 us-east-1 public via {ids.nat_gateway_id};"
                                 " expected private")
    summary = report["observed"]["summary"]
    assert summary["public"]["flows"] == 1 and summary["gateway"]["flows"] == 1
    assert summary["public"]["new_bytes"] >= PUBLIC_BYTES
    cost = report["observed"]["nat_cost"]
    assert cost["new_bytes"] == public["new_bytes"] and cost["nat_gateways"] == [ids.nat_gateway_id]
    assert cost["price_per_gb"] == 0.048 and cost["new_usd"] > 0     # eu-west-1's public price
    out, err = capsys.readouterr()
    assert f"{comm} (pid {flows.client_pid}) -> {GLOBAL_S3_IP}" in err
    assert "observed (expect private, from sock_diag): 2 S3 flow(s)" in out


def test_a_long_connection_is_counted_once(local_env, tmp_path, flows):
    wiring = ObservesNamespace(flows.name, flows.proc_net)
    _, first = _check(local_env, tmp_path, wiring, "first")
    _, second = _check(local_env, tmp_path, wiring, "second")
    assert {f["new_bytes"] for f in second["observed"]["flows"]} == {0}
    assert second["observed"]["summary"]["public"]["total_bytes"] == \
        first["observed"]["summary"]["public"]["total_bytes"] >= PUBLIC_BYTES
    assert second["observed"]["nat_cost"]["new_bytes"] == 0
    assert second["observed"]["nat_cost"]["total_bytes"] == first["observed"]["nat_cost"]["new_bytes"]


def test_without_netlink_the_proc_fallback_still_judges_the_flows(local_env, tmp_path, flows):
    wiring = ObservesNamespace(flows.name, flows.proc_net, refuse_netlink=True)
    code, report = _check(local_env, tmp_path, wiring)
    jsonschema.validate(report, report_schema())
    observed = report["observed"]
    assert observed["source"] == "proc"
    assert any("EPERM" in e and "no byte counters" in e for e in observed["errors"])
    found = _by_remote(report)
    assert found[GLOBAL_S3_IP]["path"] == "public" and found[GLOBAL_S3_IP]["bytes_sent"] is None
    assert found[GLOBAL_S3_IP]["process"]["pid"] == flows.client_pid
    assert code == 2


def test_each_daemon_cycle_reports_the_flows_and_counts_bytes_once(local_env, tmp_path, flows):
    from s3_route_agent.runs.daemon import Daemon, SdNotifier
    from s3_route_agent.sinks import FanOut
    from support import MemorySink

    config = local_env.write_config(tmp_path / "agent.yaml", targets=TARGETS,
                                    state_dir=str(tmp_path / "state"), observe={"enabled": True},
                                    daemon={"interval_seconds": 0.5, "jitter_seconds": 0})
    memory = MemorySink()
    wiring = ObservesNamespace(flows.name, flows.proc_net)
    cycles = {"n": 0}

    def sinks(_config):
        class MoreBetweenCycles(MemorySink):
            def emit(self, report):
                memory.emit(report)
                cycles["n"] += 1
                if cycles["n"] == 2:
                    flows.send_more(70_000)       # the connections live on and move more bytes
        return FanOut([MoreBetweenCycles()])

    daemon = Daemon(str(config), max_cycles=3, notifier=SdNotifier({}),
                    deps_factory=wiring.check_deps, sinks_factory=sinks)
    assert daemon.run() == 0
    assert [r["status"] for r in memory.reports] == ["CRITICAL"] * 3
    new = [{f["remote_ip"]: f["new_bytes"] for f in r["observed"]["flows"]} for r in memory.reports]
    assert new[0][GLOBAL_S3_IP] >= PUBLIC_BYTES and new[0][REGIONAL_S3_IP] >= GATEWAY_BYTES
    assert new[1] == {GLOBAL_S3_IP: 0, REGIONAL_S3_IP: 0}                  # counted once
    assert new[2] == {GLOBAL_S3_IP: 70_000, REGIONAL_S3_IP: 70_000}        # only the growth
    totals = [r["observed"]["summary"]["public"]["total_bytes"] for r in memory.reports]
    assert totals[0] == totals[1] and totals[2] == totals[1] + 70_000
    for report in memory.typed:
        assert report.observed.bad_flows[0].process.pid == flows.client_pid


def test_explain_tells_what_the_host_does_with_a_name(local_env, tmp_path, flows, capsys):
    import time

    from s3_route_agent.collectors.connections import ObservedStateFile
    from s3_route_agent.engine.observed import NameRecord, ObservedState
    now = time.time()
    # The host's software was seen resolving a bucket name (as the DNS sniffer leaves it).
    ObservedStateFile(tmp_path / "state").store(ObservedState(since=now, names=(
        NameRecord("demo-bucket.s3.eu-west-1.amazonaws.com", ("198.51.100.11",), now - 60, now,
                   resolved=True),)))
    config = local_env.write_config(tmp_path / "agent.yaml", state_dir=str(tmp_path / "state"),
                                    observe={"enabled": True})
    wiring = ObservesNamespace(flows.name, flows.proc_net)

    def explain(host: str) -> tuple[int, dict]:
        code = main(["explain", host, "--config", str(config), "--format", "json"], wiring=wiring)
        return code, json.loads(capsys.readouterr().out)

    code, out = explain("s3.eu-west-1.amazonaws.com")
    seen = {s["title"]: s["lines"] for s in out["sections"]}["Seen on this host"]
    assert any(f"(pid {flows.client_pid}) -> {REGIONAL_S3_IP} (s3.eu-west-1.amazonaws.com) S3 "
               "eu-west-1 gateway" in line for line in seen), seen
    # The host's public flow to another name does not make this name's walk-through CRITICAL.
    assert code == 0 and out["status"] == "OK"
    assert out["check"]["observed"]["status"] == "CRITICAL"

    code, out = explain("Demo-Bucket.S3.eu-west-1.amazonaws.com.")     # as DNS writes it
    assert out["host"] == "demo-bucket.s3.eu-west-1.amazonaws.com"
    seen = {s["title"]: s["lines"] for s in out["sections"]}["Seen on this host"]
    assert seen[0].startswith("This host's software was seen resolving it (DNS responses on the "
                              "host)") and "addresses 198.51.100.11" in seen[0]


def test_names_the_host_was_seen_resolving_join_the_default_targets(local_env, tmp_path, flows):
    import time

    from s3_route_agent.collectors.connections import ObservedStateFile
    from s3_route_agent.engine.observed import NameRecord, ObservedState
    now = time.time()
    names = tuple(NameRecord(f"b{i}.s3.eu-west-1.amazonaws.com", ("198.51.100.11",), now - 600,
                             now - 10 * i, resolved=True) for i in range(4))
    names += (NameRecord("www.example.com", ("93.184.216.34",), now, now, resolved=True),)
    ObservedStateFile(tmp_path / "state").store(ObservedState(since=now, names=names))
    config = local_env.write_config(tmp_path / "agent.yaml", targets=[],
                                    state_dir=str(tmp_path / "state"),
                                    observe={"enabled": True, "discovered_targets": 2})
    report_file = tmp_path / "r.json"
    main(["check", "--config", str(config), "--format", "json", "--report-file",
          str(report_file)], wiring=ObservesNamespace(flows.name, flows.proc_net))
    report = json.loads(report_file.read_text())
    targets = {t["name"]: t for t in report["targets"]}
    observed = [n for n in targets if n.startswith("observed-")]
    assert observed == ["observed-b0.s3.eu-west-1.amazonaws.com",
                        "observed-b1.s3.eu-west-1.amazonaws.com"]      # most recent first, 2
    first = targets[observed[0]]
    assert first["path"] == "gateway" and first["bucket"] == "b0"
    assert first["evidence"][0].startswith("b0.s3.eu-west-1.amazonaws.com is checked because "
                                           "this host's software was seen resolving it")
    assert "at most 2 such name(s)" in first["evidence"][0]
    assert "s3.eu-west-1.amazonaws.com" in {t["host"] for t in report["targets"]}  # defaults stay


def test_the_daemon_learns_the_names_the_host_resolves_and_checks_them(local_env, tmp_path):
    """``run`` as its own process inside the namespace, probes on: the DNS sniffer sees the
    names another process resolves (from a resolver inside the namespace), ``observed.names``
    lists them, flows are named after them, and the next cycle checks them as default targets.
    The inventory comes from the cache a ``check`` left (no AWS endpoint inside the namespace);
    the traceroutes reach only the namespace's own addresses."""
    import subprocess
    import sys
    import time

    from s3_route_agent.devenv.lab import netns
    from s3_route_agent.devenv.localenv.dns_server import LocalDnsServer
    from s3_route_agent.devenv.localenv.environment import REGIONAL_BUCKET_IP, dns_zone_for

    ids = local_env.ids
    state = tmp_path / "state"
    reports = tmp_path / "reports.jsonl"
    common = dict(targets=[], buckets=[], state_dir=str(state), imds={"enabled": False},
                  aws={"region": "eu-west-1", "endpoint_url": local_env.moto.endpoint_url,
                       "max_attempts": 1, "connect_timeout_seconds": 1},
                  identity={"vpc_id": ids.vpc_id, "subnet_id": ids.app_subnet_id,
                            "instance_id": ids.instance_id})
    primer = local_env.write_config(tmp_path / "primer.yaml", **common)
    # the cache (WARNING: the default global target is public, and not seen in use)
    assert main(["check", "--config", str(primer), "--format", "json"]) in (0, 1, 2)
    with namespace_with_flows([REGIONAL_S3_IP, REGIONAL_BUCKET_IP],
                              [f"{REGIONAL_BUCKET_IP}:100000"]) as flows:
        with netns.entered(flows.name):
            dns = LocalDnsServer(dns_zone_for(ids)).start()       # its sockets stay inside
        try:
            config = local_env.write_config(
                tmp_path / "daemon.yaml", **{**common, "dns": {"nameservers": ["127.0.0.1"],
                                                               "port": dns.port}},
                observe={"enabled": True},
                probe={"enabled": True, "max_hops": 1, "timeout_seconds": 0.2},
                daemon={"interval_seconds": 3, "jitter_seconds": 0},
                outputs={"file": {"path": str(reports)}})
            proc = subprocess.Popen(["ip", "netns", "exec", flows.name, sys.executable, "-m",
                                     "s3_route_agent", "run", "--config", str(config),
                                     "--max-cycles", "3"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            try:
                def written() -> list[dict]:
                    text = reports.read_text() if reports.exists() else ""
                    return [json.loads(line) for line in text.splitlines() if line.strip()]
                deadline = time.monotonic() + 90
                while not written() and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert written(), proc.stderr.read() if proc.poll() is not None else "no report"
                # Another process of the host resolves a bucket name, after the first cycle.
                lookup = ("import dns.resolver; r = dns.resolver.Resolver(configure=False); "
                          f"r.nameservers = ['127.0.0.1']; r.port = {dns.port}; "
                          "r.resolve('logs.s3.eu-west-1.amazonaws.com', 'A')")
                subprocess.run(["ip", "netns", "exec", flows.name, sys.executable, "-c", lookup],
                               check=True, capture_output=True, timeout=30)
                _, err = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()                 # only the process this test started
                    proc.wait()
        finally:
            dns.stop()
    assert proc.returncode == 0, err
    first, second, third = written()
    assert [n["name"] for n in first["observed"]["names"]] == []
    names = {n["name"]: n for n in second["observed"]["names"]}
    assert names["logs.s3.eu-west-1.amazonaws.com"]["resolved"] is True
    assert names["logs.s3.eu-west-1.amazonaws.com"]["addresses"] == [REGIONAL_BUCKET_IP]
    (flow,) = second["observed"]["flows"]
    assert flow["hostname"] == "logs.s3.eu-west-1.amazonaws.com" and flow["path"] == "gateway"
    assert flow["process"]["pid"] == flows.client_pid
    # The third cycle checks the name the host was seen resolving, and says why.
    targets = {t["name"]: t for t in third["targets"]}
    seen = targets["observed-logs.s3.eu-west-1.amazonaws.com"]
    assert seen["path"] == "gateway" and "seen resolving it" in seen["evidence"][0]
    # The agent's own lookups are not the host's: the default targets are not in the names.
    assert "s3.eu-west-1.amazonaws.com" not in names
