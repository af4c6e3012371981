"""``check`` end to end against the local environment (moto, DNS server, IMDSv2 emulator on
127.0.0.1) when traffic is routed but dropped (issue 10): security groups, network ACLs and VPC
Block Public Access, and a cross-Region interface endpoint.

Each test seeds its own world (a new VPC, instance and IMDS emulator): the security groups and
network ACLs it changes belong to that VPC alone. Block Public Access is per account and region,
so the tests that turn it on turn it off again, whatever happens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import boto3
import jsonschema
import pytest

from s3_route_agent.config import load_config
from s3_route_agent.devenv.localenv import moto_patches, world
from s3_route_agent.devenv.localenv.environment import (DEMO_BUCKET, LocalEnvironment,
                                                        safe_environ)
from s3_route_agent.engine.model import Expect
from s3_route_agent.report.document import report_schema
from s3_route_agent.report.text import render_text
from s3_route_agent.runs.check import CheckResult, run_check
from s3_route_agent.runs.explain import explain_host, render_explanation
from s3_route_agent.wiring import build_check_deps

REGIONAL = {"name": "bucket-regional", "host": "{bucket}.s3.{region}.amazonaws.com",
            "expect": "gateway", "bucket": DEMO_BUCKET}
LEGACY = {"name": "legacy-global", "host": "s3.amazonaws.com", "expect": "any"}
HTTPS = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalEnvironment]:
    for name, value in safe_environ().items():
        monkeypatch.setenv(name, value)
    with LocalEnvironment() as local:
        yield local


def check(env: LocalEnvironment, tmp_path: Path, targets: list[dict[str, Any]]) -> CheckResult:
    config = load_config(env.write_config(tmp_path / "agent.yaml", targets=targets,
                                          state_dir=str(tmp_path / "state")))
    result = run_check(config, build_check_deps(config))
    jsonschema.validate(result.report.document, report_schema())
    return result


def target(result: CheckResult, name: str) -> dict[str, Any]:
    return next(t for t in result.report.document["targets"] if t["name"] == name)


def test_egress_security_group_without_s3_is_blocked(env, tmp_path):
    ids = env.ids
    world.set_security_group_egress(env.moto.endpoint_url, ids,
                                    [{**HTTPS, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    result = check(env, tmp_path, [REGIONAL])
    got = target(result, "bucket-regional")
    assert (got["path"], got["status"], got["would_take"]) == ("blocked", "CRITICAL", "gateway")
    (blocker,) = got["blocked_by"]
    assert (blocker["kind"], blocker["id"], blocker["direction"]) == (
        "security_group", ids.default_security_group_id, "egress")
    assert ids.s3_prefix_list_id in blocker["fix"]
    address = got["addresses"][0]
    assert address["route"]["target"] == ids.gateway_endpoint_id   # the route that exists
    assert result.report.document["exit_code"] == 2
    text = render_text(result.report)
    assert "dropped by security group" in text and "fix: add an egress rule" in text


def test_security_group_allowing_443_to_the_prefix_list_only_takes_the_gateway(env, tmp_path):
    ids = env.ids
    world.set_security_group_egress(env.moto.endpoint_url, ids, [
        {**HTTPS, "PrefixListIds": [{"PrefixListId": ids.s3_prefix_list_id}]}])
    result = check(env, tmp_path, [REGIONAL, LEGACY])
    regional = target(result, "bucket-regional")
    assert (regional["path"], regional["status"]) == ("gateway", "OK")
    assert regional["blocked_by"] == [] and regional["would_take"] is None
    assert any(f"allows egress tcp/443 to {ids.s3_prefix_list_id}" in e
               for e in regional["addresses"][0]["evidence"])
    # us-east-1's S3 (the legacy global name, through the NAT gateway) is not in that list.
    legacy = target(result, "legacy-global")
    assert (legacy["path"], legacy["would_take"]) == ("blocked", "public")


def test_network_acl_denying_outbound_443_to_s3_is_blocked(env, tmp_path):
    ids = env.ids
    acl = world.set_subnet_network_acl(env.moto.endpoint_url, ids, ids.app_subnet_id, [
        {"RuleNumber": 90, "Protocol": "6", "RuleAction": "deny", "Egress": True,
         "CidrBlock": "198.51.100.0/24", "PortRange": {"From": 443, "To": 443}},
        {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": True,
         "CidrBlock": "0.0.0.0/0"},
        {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": False,
         "CidrBlock": "0.0.0.0/0"}])
    got = target(check(env, tmp_path, [REGIONAL]), "bucket-regional")
    assert (got["path"], got["status"], got["would_take"]) == ("blocked", "CRITICAL", "gateway")
    (blocker,) = got["blocked_by"]
    assert (blocker["kind"], blocker["id"], blocker["direction"], blocker["rule"]) == (
        "network_acl", acl, "outbound", "90")


def test_network_acl_without_inbound_ephemeral_ports_is_blocked(env, tmp_path):
    ids = env.ids
    acl = world.set_subnet_network_acl(env.moto.endpoint_url, ids, ids.app_subnet_id, [
        {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": True,
         "CidrBlock": "0.0.0.0/0"},
        {"RuleNumber": 100, "Protocol": "6", "RuleAction": "allow", "Egress": False,
         "CidrBlock": "0.0.0.0/0", "PortRange": {"From": 443, "To": 443}}])
    got = target(check(env, tmp_path, [REGIONAL]), "bucket-regional")
    assert (got["path"], got["status"]) == ("blocked", "CRITICAL")
    (blocker,) = got["blocked_by"]
    assert (blocker["id"], blocker["direction"], blocker["rule"]) == (acl, "inbound", "*")
    assert "replies" in blocker["detail"] and "stateless" in blocker["detail"]


@pytest.fixture
def bidirectional(env: LocalEnvironment) -> Iterator[LocalEnvironment]:
    moto_patches.set_block_public_access(world.REGION, "block-bidirectional")
    try:
        yield env
    finally:
        moto_patches.clear_block_public_access(world.REGION)


def test_block_public_access_bidirectional_blocks_the_nat_route(bidirectional, tmp_path):
    ids = bidirectional.ids
    result = check(bidirectional, tmp_path, [LEGACY])
    got = target(result, "legacy-global")
    assert (got["path"], got["status"], got["would_take"]) == ("blocked", "CRITICAL", "public")
    (blocker,) = got["blocked_by"]
    assert (blocker["kind"], blocker["mode"]) == ("block_public_access", "block-bidirectional")
    assert ids.public_subnet_id in blocker["where"]        # the NAT gateway's subnet
    assert got["addresses"][0]["route"]["target"] == ids.nat_gateway_id
    assert result.report.document["exit_code"] == 2


def test_block_public_access_bidirectional_leaves_the_gateway_endpoint(bidirectional, tmp_path):
    got = target(check(bidirectional, tmp_path, [REGIONAL]), "bucket-regional")
    assert (got["path"], got["status"], got["blocked_by"]) == ("gateway", "OK", [])


def test_nat_subnet_exclusion_lets_the_nat_route_through(bidirectional, tmp_path):
    ids = bidirectional.ids
    moto_patches.add_block_public_access_exclusion(ids.public_subnet_id, "allow-egress",
                                                   world.REGION)
    got = target(check(bidirectional, tmp_path, [LEGACY]), "legacy-global")
    assert (got["path"], got["status"]) == ("public", "OK")
    assert any("exempts traffic through NAT gateway" in e
               for e in got["addresses"][0]["evidence"])


def test_cross_region_interface_endpoint_is_interface(env, tmp_path):
    ids = env.ids
    bucket = "far-west-bucket"
    boto3.session.Session(region_name="us-west-2").client(
        "s3", endpoint_url=env.moto.endpoint_url).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    endpoint_id, names = world.add_cross_region_interface_endpoint(
        env.moto.endpoint_url, ids, "us-west-2", "10.0.2.70")
    for name in names:
        env.zone.add_a(name, "10.0.2.70")
    host = f"{bucket}.bucket.{names[0].removeprefix('*.')}"
    result = check(env, tmp_path, [{"name": "far", "host": host, "expect": "interface",
                                    "bucket": bucket}])
    got = target(result, "far")
    assert (got["path"], got["status"]) == ("interface", "OK"), got["reason"]
    assert got["addresses"][0]["endpoint_id"] == endpoint_id
    assert any("carries S3 of us-west-2" in e for e in got["addresses"][0]["evidence"])
    buckets = {b["bucket"]: b for b in result.report.document["policies"]["buckets"]}
    assert buckets[bucket]["region"] == "us-west-2"


def test_explain_offers_a_cross_region_endpoint_for_a_bucket_in_another_region(env, tmp_path):
    bucket = "far-west-explain"
    boto3.session.Session(region_name="us-west-2").client(
        "s3", endpoint_url=env.moto.endpoint_url).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    config = load_config(env.write_config(tmp_path / "agent.yaml", targets=[],
                                          state_dir=str(tmp_path / "state")))
    explanation = explain_host(config, build_check_deps(config),
                               f"{bucket}.s3.eu-west-1.amazonaws.com", Expect.PRIVATE)
    fixes = " ".join(explanation.fixes)
    assert "cross-Region interface endpoint" in fixes
    assert "--service-name com.amazonaws.us-west-2.s3 --service-region us-west-2" in fixes


def test_explain_says_what_drops_the_traffic_and_what_to_change(env, tmp_path):
    ids = env.ids
    world.set_security_group_egress(env.moto.endpoint_url, ids, [])
    config = load_config(env.write_config(tmp_path / "agent.yaml", targets=[],
                                          state_dir=str(tmp_path / "state")))
    explanation = explain_host(config, build_check_deps(config),
                               f"{DEMO_BUCKET}.s3.eu-west-1.amazonaws.com", Expect.GATEWAY)
    text = render_explanation(explanation)
    assert explanation.verdict.path.value == "blocked"
    assert "Security groups, network ACLs, Block Public Access" in text
    assert f"This host's security groups: {ids.default_security_group_id}" in text
    assert "no egress rule at all" in text
    assert any("is blocked by security group" in f and "authorize-security-group-egress" in f
               for f in explanation.fixes)
