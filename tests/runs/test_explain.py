"""``explain`` end to end against the local environment (moto, DNS server and IMDS emulator on
127.0.0.1): the walk-through's sections, the verdict it shares with ``check``, and the fixes."""

from __future__ import annotations


import json

import boto3
import pytest

from s3_route_agent import cli
from s3_route_agent.runs.check import run_check
from s3_route_agent.config import load_config
from s3_route_agent.runs.explain import explain_host, render_explanation
from s3_route_agent.devenv.localenv import world
from s3_route_agent.devenv.localenv.environment import interface_host, safe_environ
from s3_route_agent.engine.model import Expect, Status
from s3_route_agent.wiring import build_check_deps






@pytest.fixture
def config_path(local_env, tmp_path, monkeypatch):
    for name, value in safe_environ().items():
        monkeypatch.setenv(name, value)
    # A fresh state_dir per test: no inventory cached by another test.
    return local_env.write_config(tmp_path / "agent.yaml", state_dir=str(tmp_path / "state"))


def run_cli(capsys, *argv: str, wiring=None) -> tuple[int, str, str]:
    code = cli.main(list(argv), wiring=wiring)
    out, err = capsys.readouterr()
    return code, out, err


def words(text: str) -> str:
    """``text`` with its line breaks and indents as single spaces: explain's text is wrapped to
    80 columns, so a sentence may continue on the next line."""
    return " ".join(text.split())


def test_global_name_walkthrough_and_fix(local_env, config_path, capsys):
    code, text, _ = run_cli(capsys, "explain", "demo-bucket.s3.amazonaws.com", "--config",
                            str(config_path))
    assert code == 2
    assert max(len(line) for line in text.splitlines() if " " in line.strip()) <= 80
    out = words(text)
    ids = local_env.ids
    for title in ("1. Identity", "2. Route table", "3. S3 endpoints", "4. S3 prefix list",
                  "DNS", "Routes per address", "Verdict", "What to change:"):
        assert title in out
    assert f"{ids.app_route_table_id} is explicitly associated with {ids.app_subnet_id}" in out
    assert f"{ids.gateway_endpoint_id}: Gateway com.amazonaws.eu-west-1.s3" in out
    assert "CNAME chain: demo-bucket.s3.amazonaws.com -> s3-1-w.amazonaws.com" in out
    assert f"only matching route: 0.0.0.0/0 -> {ids.nat_gateway_id}" in out
    assert "S3 in us-east-1, not eu-west-1" in out
    assert "use s3.eu-west-1.amazonaws.com" in out and "addressing_style': 'virtual'" in out


def test_regional_name_is_ok_and_matches_check(local_env, config_path, capsys):
    code, out, _ = run_cli(capsys, "explain", "demo-bucket.s3.eu-west-1.amazonaws.com",
                           "--config", str(config_path), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["path"] == "gateway" and doc["fixes"] == []
    config = load_config(config_path)
    check = run_check(config, build_check_deps(config))
    by_host = {t["host"]: t for t in check.report.document["targets"]}
    assert by_host["demo-bucket.s3.eu-west-1.amazonaws.com"]["path"] == doc["path"]
    assert doc["check"]["targets"][0]["addresses"] == \
        by_host["demo-bucket.s3.eu-west-1.amazonaws.com"]["addresses"]


def test_interface_name_and_expect_interface_fix(local_env, config_path, capsys):
    code, out, _ = run_cli(capsys, "explain", interface_host(local_env.ids), "--config",
                           str(config_path))
    assert code == 0 and "takes the interface path" in out
    code, out, _ = run_cli(capsys, "explain", "s3.eu-west-1.amazonaws.com", "--config",
                           str(config_path), "--expect", "interface")
    assert code == 2
    assert f"enable private DNS on {local_env.ids.interface_endpoint_id}" in out


def test_bucket_in_another_region_and_its_policy(local_env, config_path, capsys):
    s3 = boto3.session.Session(region_name="us-east-1").client(
        "s3", endpoint_url=local_env.moto.endpoint_url)
    s3.create_bucket(Bucket="far-bucket")
    s3.put_bucket_policy(Bucket="far-bucket", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::far-bucket", "arn:aws:s3:::far-bucket/*"],
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}}]}))
    code, text, _ = run_cli(capsys, "explain", "far-bucket.s3.eu-west-1.amazonaws.com",
                            "--config", str(config_path))
    out = words(text)
    assert "Bucket far-bucket" in out
    assert "Region us-east-1 (GetBucketLocation)" in out
    assert "Bucket far-bucket is in us-east-1 (GetBucketLocation), not this VPC's eu-west-1" in out
    assert "far-bucket denies s3:GetObject from outside its VPC endpoints (vpce-1a2b3c4d)" in out


def test_removed_gateway_route_gives_the_association_fix(local_env, config_path):
    ids = local_env.ids
    world.remove_gateway_route(local_env.moto.endpoint_url, ids)
    try:
        config = load_config(config_path)
        explanation = explain_host(config, build_check_deps(config),
                                   "s3.eu-west-1.amazonaws.com")
        assert explanation.status is Status.CRITICAL
        assert any(f"add {ids.app_route_table_id} to {ids.gateway_endpoint_id}" in fix
                   for fix in explanation.fixes)
        assert "Nothing to change" not in render_explanation(explanation)
    finally:
        world.restore_gateway_route(local_env.moto.endpoint_url, ids)


def test_unresolvable_name(local_env, config_path, capsys):
    code, out, _ = run_cli(capsys, "explain", "nothing.s3.eu-west-1.example.org", "--config",
                           str(config_path))
    assert code == 2
    assert "nxdomain" in out and "make nothing.s3.eu-west-1.example.org resolvable" in out


def test_identity_failure_is_unknown(local_env, tmp_path, monkeypatch, capsys):
    for name, value in safe_environ().items():
        monkeypatch.setenv(name, value)
    path = local_env.write_config(tmp_path / "bad.yaml", state_dir=str(tmp_path / "s"),
                                  imds={"endpoint": "http://127.0.0.1:9", "timeout_seconds": 0.2,
                                        "attempts": 1})
    code, out, _ = run_cli(capsys, "explain", "s3.eu-west-1.amazonaws.com", "--config", str(path))
    assert code == 3
    assert "1. Identity" in out and "unknown" in out


def test_unreadable_bucket_policy_is_not_called_absent(local_env, config_path, capsys):
    code, out, _ = run_cli(capsys, "explain", "missing-bucket.s3.eu-west-1.amazonaws.com",
                           "--config", str(config_path))
    assert "could not be read" in out and "has no bucket policy" not in out
    assert "GetBucketPolicy missing-bucket" in out


SECRET_SIGNATURE = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("argv", [
    ("explain", "s3.eu-west-1.amazonaws.com", "--format", "json"),
    ("explain", "s3.eu-west-1.amazonaws.com", "--format", "text"),
    ("presign", "--bucket", "demo-bucket", "--key", "k", "--format", "json"),
    ("presign", "--bucket", "demo-bucket", "--key", "k", "--format", "text"),
    ("check", "--format", "json"),
], ids=["explain json", "explain text", "presign json", "presign text", "check json"])
def test_cli_outputs_are_redacted_like_check(local_env, config_path, capsys, argv):
    """A collector message carrying a signature never reaches stdout or stderr of any report
    command (check's stdout is redacted; explain and presign embed the same check report)."""
    from dataclasses import replace

    from s3_route_agent.errors import IdentityError
    from s3_route_agent.wiring import Wiring

    class Leaky(Wiring):
        def check_deps(self, config):
            def identity():
                raise IdentityError("imds_unreachable", "IMDS said https://b.s3.amazonaws.com/"
                                    f"k?X-Amz-Signature={SECRET_SIGNATURE}&AWSAccessKeyId="
                                    "AKIAIOSFODNN7EXAMPLE")
            return replace(super().check_deps(config), identity=identity)
    command, *rest = argv
    code, out, err = run_cli(capsys, command, "--config", str(config_path), *rest,
                             wiring=Leaky())
    assert code == 3
    assert "X-Amz-Signature=" in out + err  # the message itself is there, its secret is not
    for secret in (SECRET_SIGNATURE, "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in out and secret not in err


def test_explain_not_ok_gives_a_one_line_reason_on_stderr(local_env, config_path, capsys):
    """Like check and presign: a status other than OK puts its one-line reason on stderr."""
    code, out, err = run_cli(capsys, "explain", "nothing.s3.eu-west-1.example.org", "--config",
                             str(config_path))
    assert code == 2
    reasons = [line for line in err.splitlines() if "CRITICAL" in line]
    assert len(reasons) == 1 and "nothing.s3.eu-west-1.example.org" in reasons[0]
    assert "nxdomain" in reasons[0].lower() or "does not exist" in reasons[0].lower()


# --- issue 10 §3: names a gateway endpoint of com.amazonaws.REGION.s3 does not carry ----------

EXPRESS_HOST = "data--euw1-az1--x-s3.s3express-euw1-az1.eu-west-1.amazonaws.com"
EXPRESS_SERVICE = "com.amazonaws.eu-west-1.s3express"
OLAP_HOST = "olap-111122223333.s3-object-lambda.eu-west-1.amazonaws.com"
# An address in no prefix list of the local world (the agent only reasons about it).
OFF_LIST_IP = "198.51.100.200"


def test_s3express_name_without_its_gateway_endpoint(local_env, config_path):
    """Every fix and explanation names com.amazonaws.REGION.s3express, never the S3 one."""
    ids = local_env.ids
    local_env.zone.add_a(EXPRESS_HOST, OFF_LIST_IP)
    config = load_config(config_path)
    explanation = explain_host(config, build_check_deps(config), EXPRESS_HOST)
    text = render_explanation(explanation)
    assert explanation.status is Status.CRITICAL and explanation.verdict.path.value == "public"
    assert f"{ids.vpc_id} has no gateway endpoint for {EXPRESS_SERVICE}" in text
    assert any(fix.startswith(f"create a gateway endpoint for {EXPRESS_SERVICE} ")
               for fix in explanation.fixes), explanation.fixes
    assert not any("create a gateway endpoint for com.amazonaws.eu-west-1.s3 " in fix
                   or ids.gateway_endpoint_id in fix for fix in explanation.fixes)


def test_s3express_gateway_endpoint_without_its_route(local_env, config_path):
    """moto adds no route for an s3express gateway endpoint: the endpoint lists the table, the
    table has no route to its prefix list, and the fix is that endpoint's association."""
    ids = local_env.ids
    local_env.zone.add_a(EXPRESS_HOST, OFF_LIST_IP)
    ec2 = world.local_ec2_client(local_env.moto.endpoint_url, ids.region, ids.account_id)
    express = ec2.create_vpc_endpoint(VpcId=ids.vpc_id, ServiceName=EXPRESS_SERVICE,
                                      VpcEndpointType="Gateway",
                                      RouteTableIds=[ids.app_route_table_id])["VpcEndpoint"]
    try:
        config = load_config(config_path)
        explanation = explain_host(config, build_check_deps(config), EXPRESS_HOST)
        text = render_explanation(explanation)
        endpoint = express["VpcEndpointId"]
        assert f"{endpoint}: Gateway {EXPRESS_SERVICE}" in text
        assert (f"Gateway endpoint {endpoint} ({EXPRESS_SERVICE}) lists "
                f"{ids.app_route_table_id}, but the table has no route") in text
        assert any(f"add {ids.app_route_table_id} to {endpoint}, the {EXPRESS_SERVICE} gateway "
                   "endpoint" in fix for fix in explanation.fixes), explanation.fixes
        assert not any(ids.gateway_endpoint_id in fix for fix in explanation.fixes)
    finally:
        # moto's DeleteVpcEndpoints looks for the route it never added: detach the table first.
        ec2.modify_vpc_endpoint(VpcEndpointId=express["VpcEndpointId"],
                                RemoveRouteTableIds=[ids.app_route_table_id])
        ec2.delete_vpc_endpoints(VpcEndpointIds=[express["VpcEndpointId"]])


def test_object_lambda_name_gets_no_gateway_route_fix(local_env, config_path):
    """With the S3 gateway endpoint's route removed, a regular name is told to re-associate the
    table (test above); an Object Lambda name is not: no gateway endpoint carries it."""
    ids = local_env.ids
    local_env.zone.add_a(OLAP_HOST, "198.51.100.11")
    world.remove_gateway_route(local_env.moto.endpoint_url, ids)
    try:
        config = load_config(config_path)
        explanation = explain_host(config, build_check_deps(config), OLAP_HOST)
        text = render_explanation(explanation)
        assert explanation.status is Status.CRITICAL and explanation.verdict.path.value == "public"
        assert "Object Lambda does not support gateway endpoints" in text
        assert "endpoint route was removed" not in text and "not associated with" not in text
        assert not any(ids.gateway_endpoint_id in fix for fix in explanation.fixes)
        assert any("supporting standard access point" in fix for fix in explanation.fixes)
    finally:
        world.restore_gateway_route(local_env.moto.endpoint_url, ids)


def test_fips_name_expecting_interface_is_not_told_to_enable_private_dns(local_env, config_path):
    """PrivateLink for S3 has no FIPS endpoints: private DNS on the interface endpoint would
    not answer s3-fips names, so that is not the fix."""
    ids = local_env.ids
    host = "s3-fips.eu-west-1.amazonaws.com"
    local_env.zone.add_a(host, "198.51.100.10")
    config = load_config(config_path)
    explanation = explain_host(config, build_check_deps(config), host, expect=Expect.INTERFACE)
    assert explanation.status is Status.CRITICAL and explanation.verdict.path.value == "gateway"
    assert not any(f"enable private DNS on {ids.interface_endpoint_id}" in fix
                   for fix in explanation.fixes)
    assert any("is a FIPS name: no interface endpoint serves FIPS names" in fix
               for fix in explanation.fixes), explanation.fixes
