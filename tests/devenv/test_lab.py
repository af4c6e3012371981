"""End-to-end lab scenarios: real traffic in network namespaces, checked against the verdicts.

Needs root and network namespaces; skipped with the reason otherwise. Every scenario asserts
path, status, the transfer's peer address and result, and (NAT cases) the NAT hop; every report
is validated against the JSON Schema. The last tests prove the safety checks refuse and that
nothing is left behind.
"""

from __future__ import annotations

import subprocess

import jsonschema
import pytest

from s3_route_agent.devenv.lab import netns
from s3_route_agent.devenv.lab.lab import LAB_PREFIX, Lab, leftovers
from s3_route_agent.devenv.lab.scenarios import SCENARIOS, run_scenario
from s3_route_agent.report.document import report_schema

AVAILABLE, WHY = netns.netns_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"lab unavailable: {WHY}")


@pytest.fixture(scope="module")
def lab():
    """One lab for the module's scenarios; torn down (and checked) at the end."""
    with Lab() as running:
        yield running
    assert leftovers(running.prefix) == []
    assert running.alive_pids() == []


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(lab: Lab, scenario) -> None:
    """Each scenario gives the expected verdict, confirmed by the traffic."""
    schema = report_schema()
    for result in run_scenario(lab, scenario):
        jsonschema.validate(result.report, schema)
        assert result.mismatches == [], (scenario.name, result.index, result.mismatches)
        assert result.exit_code == {"OK": 0, "WARNING": 1, "CRITICAL": 2,
                                    "UNKNOWN": 3}[result.report["status"]]


def test_canaries_cleaned_and_stale_ones_removed(lab: Lab) -> None:
    """No canary is left after a run; a canary older than an hour is removed at start."""
    prefix = "s3-route-agent/canary/"
    lab.control("put_object", bucket="demo-bucket", key=f"{prefix}stale-from-killed-run",
                age_seconds=7200)
    lab.control("put_object", bucket="demo-bucket", key=f"{prefix}fresh-from-other-host")
    config = lab.agent_config("cleanup", [{"name": "r", "host": "{bucket}.s3.{region}.amazonaws.com",
                                           "bucket": "demo-bucket", "expect": "gateway"}],
                              probe=False)
    code, report, _, _ = lab.run_agent(config)
    transfer = report["targets"][0]["transfer"]
    assert transfer["stale_canaries_removed"] == 1
    assert transfer["outcome"] == "ok" and transfer["canary_deleted"] is True
    keys = lab.control("list_objects", bucket="demo-bucket", prefix=prefix)["keys"]
    assert keys == [f"{prefix}fresh-from-other-host"]
    assert code == 0


def test_transfer_phases_recorded(lab: Lab) -> None:
    """Every request step carries phase timings, HTTP status, request id and the peer."""
    config = lab.agent_config("phases", [{"name": "r", "host": "{bucket}.s3.{region}.amazonaws.com",
                                          "bucket": "demo-bucket", "expect": "gateway"}],
                              probe=False, size_bytes=256 * 1024)
    _, report, _, _ = lab.run_agent(config)
    steps = {s["step"]: s for s in report["targets"][0]["transfer"]["steps"]}
    assert set(steps) == {"cleanup", "put", "get", "delete"}
    for name in ("put", "get", "delete"):
        step = steps[name]
        assert step["peer_address"] == "198.51.100.11" and step["peer_port"] == 443
        assert step["local_address"] == "10.0.1.10"
        assert step["http_status"] in (200, 204) and step["request_id"]
        for phase in ("dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms"):
            assert step[phase] is not None and step[phase] >= 0, (name, phase)
        assert step["served_by"] == "s3-gateway-eu-west-1"
    assert steps["get"]["bytes"] == 256 * 1024 and steps["get"]["throughput_mbps"] > 0


def test_oracle_answers_per_namespace(lab: Lab) -> None:
    """S3 itself states the path: the lab's S3 namespaces answer the oracle keys as S3 would.

    moto ignores policy conditions, so s3_route_agent.devenv.lab.labd evaluates the oracle policy
    (``s3-route-agent oracle-policy``) with the request context S3 would build for the way the
    request arrived: the gateway-endpoint namespace sees VPC clients (aws:SourceVpce = the gateway
    endpoint) and answers 200 only for oracle/<gateway vpce>; the interface ENI namespace answers
    200 only for oracle/<interface vpce> (aws:SourceVpce = the interface endpoint); the public
    us-east-1 namespace is reached only through the NAT (no aws:SourceVpce) and answers 200 only
    for oracle/public.
    """
    ids = lab.ids
    gw, itf = ids["gateway_endpoint_id"], ids["interface_endpoint_id"]
    config = lab.agent_config("oracle", [
        {"name": "gw", "host": "{bucket}.s3.{region}.amazonaws.com", "bucket": "demo-bucket",
         "expect": "gateway"},
        {"name": "itf", "host": lab.interface_host(), "bucket": "demo-bucket",
         "expect": "interface"},
        {"name": "pub", "host": "{bucket}.s3.amazonaws.com", "bucket": "demo-bucket",
         "expect": "public"}], probe=False)
    code, report, _, _ = lab.run_agent(config)
    targets = {t["name"]: t for t in report["targets"]}
    expected = {
        "gw": ("s3-gateway-eu-west-1", {gw: "200", itf: "AccessDenied", "public": "AccessDenied"},
               "gateway", gw),
        "itf": ("s3-interface-endpoint", {gw: "AccessDenied", itf: "200",
                                          "public": "AccessDenied"}, "interface", itf),
        "pub": ("s3-public-us-east-1", {gw: "AccessDenied", itf: "AccessDenied", "public": "200"},
                "public", None),
    }
    for name, (node, outcomes, path, vpce) in expected.items():
        oracle = targets[name]["oracle"]
        got = {r["key"].removeprefix("oracle/"): r["outcome"] for r in oracle["readings"]}
        assert got == outcomes, (name, got)
        assert {r["served_by"] for r in oracle["readings"]} == {node}
        assert oracle["conclusive"] and oracle["path"] == path and oracle["vpce_id"] == vpce
        assert oracle["agrees_with_prediction"] is True and oracle["kind"] == "policy"
        assert targets[name]["status"] == "OK" and targets[name]["reconcile"]["confirmed"]
        assert any(f.startswith("Path oracle (S3's own answer)")
                   for f in targets[name]["reconcile"]["findings"])
    assert code == 0


def test_safety_check_refuses_default_route_and_foreign_link() -> None:
    """A default route or a link the lab did not make makes the lab refuse to send traffic."""
    with Lab() as lab:
        lab.check_safety()
        host = lab.ns("host")
        netns.ip("route", "add", "default", "via", "10.0.0.5", netns=host)
        with pytest.raises(netns.LabSafetyError, match="default route"):
            lab.check_safety()
        netns.ip("route", "del", "default", netns=host)
        # Both ends inside the lab host namespace: a link the lab did not make (no dummy driver here).
        netns.ip("link", "add", "stray0", "type", "veth", "peer", "name", "stray1", netns=host)
        with pytest.raises(netns.LabSafetyError, match="unexpected link stray0"):
            lab.check_safety()
        netns.ip("link", "del", "stray0", netns=host)
        netns.ip("addr", "add", "192.168.77.1/32", "dev", "lo", netns=host)
        with pytest.raises(netns.LabSafetyError, match="outside the lab ranges"):
            lab.check_safety()
    assert leftovers(lab.prefix) == [] and lab.alive_pids() == []


def test_teardown_after_failure_leaves_nothing() -> None:
    """An exception inside the lab still removes its processes and namespaces."""
    lab = Lab()
    with pytest.raises(RuntimeError, match="boom"):
        with lab:
            assert lab.alive_pids()
            raise RuntimeError("boom")
    assert leftovers(lab.prefix) == []
    assert lab.alive_pids() == []


def test_no_lab_veth_in_root_namespace() -> None:
    """After the tests above, the root namespace holds no link into any lab namespace."""
    out = subprocess.run(["ip", "-d", "link", "show", "type", "veth"], capture_output=True,
                         text=True).stdout
    assert LAB_PREFIX not in out
