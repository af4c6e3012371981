"""The path oracle: the generated policy, checked with the evaluator for every way a request can
arrive (what S3 would answer), and the interpretation table; moto accepts the policy document
but ignores its conditions, which the interpretation must call inconclusive."""

from __future__ import annotations


import json

import boto3
import pytest

from s3_route_agent import cli
from s3_route_agent.engine.model import PathKind
from s3_route_agent.engine.oracle import (ACCESS_DENIED, OK_200, OracleReading, interpret, oracle_keys,
                          oracle_policy, render_oracle_policy)
from s3_route_agent.engine.iam_policy import DENY, Request, evaluate

BUCKET = "canary-bucket"
GW = "vpce-0aaa1111bbbb2222c"
IF = "vpce-0ddd3333eeee4444f"
READER = "arn:aws:iam::111122223333:role/agent"

# Request contexts S3 builds for each way of arriving (global condition keys documentation).
ARRIVALS = {
    "through the gateway endpoint": {"aws:SourceVpce": GW, "aws:SourceVpc": "vpc-1"},
    "through the interface endpoint": {"aws:SourceVpce": IF, "aws:SourceVpc": "vpc-1"},
    "through another endpoint": {"aws:SourceVpce": "vpce-0999", "aws:SourceVpc": "vpc-2"},
    "from the internet": {"aws:SourceIp": "203.0.113.9"},
}




def s3_answer(policy: dict, key: str, context: dict) -> str:
    """What S3 answers for a GET by a reader whose IAM policy allows it: 200 unless denied."""
    decision = evaluate(policy, Request("s3:GetObject", f"arn:aws:s3:::{BUCKET}/{key}", READER,
                                        context))
    return ACCESS_DENIED if decision.effect == DENY else OK_200


@pytest.mark.parametrize("oracle_vpce,endpoint_type,arrival,path,through", [
    (GW, "Gateway", "through the gateway endpoint", PathKind.GATEWAY, True),
    (GW, "Gateway", "from the internet", PathKind.PUBLIC, False),
    (GW, "Gateway", "through the interface endpoint", None, True),
    (IF, "Interface", "through the interface endpoint", PathKind.INTERFACE, True),
    (IF, "Interface", "from the internet", PathKind.PUBLIC, False),
    (IF, "Interface", "through another endpoint", None, True),
])
def test_policy_makes_s3_state_the_path(oracle_vpce, endpoint_type, arrival, path, through):
    policy = oracle_policy(BUCKET, [GW, IF])
    vpce_key, public_key = oracle_keys(oracle_vpce)
    reading = OracleReading(oracle_vpce, s3_answer(policy, vpce_key, ARRIVALS[arrival]),
                            s3_answer(policy, public_key, ARRIVALS[arrival]))
    evidence = interpret(reading, endpoint_type)
    assert evidence.conclusive and evidence.kind == "policy"
    assert evidence.path is path
    assert evidence.through_endpoint is through


INTERPRETATION = [
    # (id, endpoint key, public key, type, predicted, predicted endpoint, path, agrees, conclusive, kind)
    ("via endpoint, predicted gateway", OK_200, ACCESS_DENIED, "Gateway", PathKind.GATEWAY, GW,
     PathKind.GATEWAY, True, True, "policy"),
    ("via endpoint, predicted public", OK_200, ACCESS_DENIED, "Gateway", PathKind.PUBLIC, None,
     PathKind.GATEWAY, False, True, "policy"),
    ("via endpoint, predicted another endpoint", OK_200, ACCESS_DENIED, "Gateway", PathKind.GATEWAY,
     "vpce-other", PathKind.GATEWAY, False, True, "policy"),
    ("public, predicted public", ACCESS_DENIED, OK_200, None, PathKind.PUBLIC, None, PathKind.PUBLIC,
     True, True, "policy"),
    ("public, predicted gateway (the silent bypass)", ACCESS_DENIED, OK_200, None, PathKind.GATEWAY,
     GW, PathKind.PUBLIC, False, True, "policy"),
    ("no prediction", ACCESS_DENIED, OK_200, None, None, None, PathKind.PUBLIC, None, True, "policy"),
    ("both denied: another endpoint", ACCESS_DENIED, ACCESS_DENIED, None, PathKind.GATEWAY, GW, None,
     None, True, "policy"),
    ("both served: policy not in force", OK_200, OK_200, None, PathKind.GATEWAY, GW, None, None,
     False, "policy"),
    ("timeout is a network fact", "timeout after 10 s", OK_200, None, PathKind.GATEWAY, GW, None,
     None, False, "network"),
    ("connection refused is a network fact", ACCESS_DENIED, "connection refused", None,
     PathKind.GATEWAY, GW, None, None, False, "network"),
]


@pytest.mark.parametrize("key_vpce,key_public,etype,predicted,pred_ep,path,agrees,conclusive,kind",
                         [c[1:] for c in INTERPRETATION], ids=[c[0] for c in INTERPRETATION])
def test_interpretation(key_vpce, key_public, etype, predicted, pred_ep, path, agrees,
                        conclusive, kind):
    evidence = interpret(OracleReading(GW, key_vpce, key_public), etype, predicted, pred_ep)
    assert (evidence.path, evidence.agrees, evidence.conclusive, evidence.kind) == (
        path, agrees, conclusive, kind)
    assert evidence.evidence
    assert evidence.to_dict()["strength"] == ("s3-stated" if conclusive else "none")


def test_policy_shape_and_validation():
    policy = oracle_policy(BUCKET, [GW], principal=READER)
    sids = [s["Sid"] for s in policy["Statement"]]
    assert sids == [f"OracleOnlyThrough{GW.replace('-', '')}", "OraclePublicOnlyOutsideEndpoints",
                    "OracleReader"]
    assert policy["Statement"][0]["Resource"] == f"arn:aws:s3:::{BUCKET}/oracle/{GW}"
    with pytest.raises(ValueError):
        oracle_policy(BUCKET, [])
    with pytest.raises(ValueError):
        oracle_policy(BUCKET, ["igw-1"])


def test_cli_prints_the_policy(capsys):
    code = cli.main(["oracle-policy", "--bucket", BUCKET, "--vpce", GW, "--vpce", IF])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == oracle_policy(BUCKET, [GW, IF])


def test_cli_rejects_a_bad_endpoint_id(capsys):
    code = cli.main(["oracle-policy", "--bucket", BUCKET, "--vpce", "nat-1"])
    assert code == 3
    assert "not a VPC endpoint id" in capsys.readouterr().err


def test_moto_accepts_the_policy_but_ignores_its_conditions(monkeypatch):
    """Against moto in server mode on 127.0.0.1: PutBucketPolicy takes the document; GETs of both
    keys then succeed because moto does not evaluate conditions, which interpret() must report
    as inconclusive, never as a path."""
    from s3_route_agent.devenv.localenv.environment import safe_environ
    from s3_route_agent.devenv.localenv.world import start_moto_server
    for name, value in safe_environ().items():
        monkeypatch.setenv(name, value)
    server = start_moto_server()
    try:
        s3 = boto3.session.Session(region_name="eu-west-1").client(
            "s3", endpoint_url=server.endpoint_url)
        s3.create_bucket(Bucket=BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_policy(Bucket=BUCKET, Policy=render_oracle_policy(BUCKET, [GW]))
        vpce_key, public_key = oracle_keys(GW)
        outcomes = []
        for key in (vpce_key, public_key):
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"oracle")
            try:
                s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                outcomes.append(OK_200)
            except s3.exceptions.ClientError as exc:
                outcomes.append(exc.response["Error"]["Code"])
        evidence = interpret(OracleReading(GW, *outcomes), "Gateway", PathKind.GATEWAY, GW)
        assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
        # moto 5.2.5 either serves both (conditions ignored) or denies both (a conditional Deny
        # made unconditional, aws-facts.md); neither may be read as a path.
        assert outcomes[0] == outcomes[1]
        assert evidence.path is None
    finally:
        server.stop()


# --- every endpoint of the VPC at once (s3_route_agent.engine.oracle.interpret_all) ------------------------------

# (name, {vpce: outcome}, oracle/public, predicted, predicted endpoint, path, vpce, agrees, kind)
ALL_ROWS = [
    ("gateway served", {GW: OK_200, IF: ACCESS_DENIED}, ACCESS_DENIED, PathKind.GATEWAY, GW,
     PathKind.GATEWAY, GW, True, "policy"),
    ("interface served", {GW: ACCESS_DENIED, IF: OK_200}, ACCESS_DENIED, PathKind.INTERFACE, IF,
     PathKind.INTERFACE, IF, True, "policy"),
    ("public while gateway predicted", {GW: ACCESS_DENIED, IF: ACCESS_DENIED}, OK_200,
     PathKind.GATEWAY, GW, PathKind.PUBLIC, None, False, "policy"),
    ("gateway while public predicted", {GW: OK_200, IF: ACCESS_DENIED}, ACCESS_DENIED,
     PathKind.PUBLIC, None, PathKind.GATEWAY, GW, False, "policy"),
    ("no endpoint in the VPC, public", {}, OK_200, PathKind.PUBLIC, None, PathKind.PUBLIC, None, True,
     "policy"),
    ("keys missing is a setup fact", {GW: "NoSuchKey", IF: "NoSuchKey"}, "NoSuchKey",
     PathKind.GATEWAY, GW, None, None, None, "setup"),
    ("network failure on one key", {GW: OK_200, IF: "network error: timed out"}, ACCESS_DENIED,
     PathKind.GATEWAY, GW, None, None, None, "network"),
]


@pytest.mark.parametrize("row", ALL_ROWS, ids=[r[0] for r in ALL_ROWS])
def test_interpret_all(row):
    from s3_route_agent.engine.oracle import interpret_all
    _, outcomes, public, predicted, endpoint, path, vpce, agrees, kind = row
    evidence = interpret_all(outcomes, public, {GW: "Gateway", IF: "Interface"}, predicted,
                             endpoint)
    assert (evidence.path, evidence.vpce_id, evidence.agrees, evidence.kind) ==\
        (path, vpce, agrees, kind)
    assert evidence.conclusive is (kind == "policy")
