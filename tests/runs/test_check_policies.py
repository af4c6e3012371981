"""``check``'s bucket facts and ``policies`` section against the local environment (moto, DNS
server and IMDS emulator on 127.0.0.1).

moto stores a bucket policy (put_bucket_policy / GetBucketPolicy) even though it ignores its
conditions, and stores an endpoint's PolicyDocument (modify_vpc_endpoint): that is all these
tests need, since the agent decides with its own evaluator (agent/policy.py) from the documents.
"""

from __future__ import annotations

import json
from dataclasses import replace

import boto3
import jsonschema
import pytest
from botocore.stub import Stubber

from s3_route_agent.aws import make_client
from s3_route_agent.collectors.bucket_facts import collect_bucket_facts
from s3_route_agent.runs.check import run_check
from s3_route_agent.config import load_config
from s3_route_agent.devenv.localenv.environment import DEMO_BUCKET, LocalEnvironment, safe_environ
from s3_route_agent.engine.model import Status
from s3_route_agent.report.document import report_schema
from s3_route_agent.report.text import render_text
from s3_route_agent.wiring import build_check_deps

FAR_BUCKET = "far-policy-bucket"


@pytest.fixture(scope="module")
def local_env():
    """The local environment with a bucket policy on demo-bucket (aws:SourceVpce = the gateway
    endpoint), a bucket in us-east-1, and a gateway-endpoint policy that allows only reads."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in safe_environ().items():
            patch.setenv(name, value)
        with LocalEnvironment() as env:
            ids = env.ids
            s3 = boto3.session.Session(region_name="eu-west-1").client(
                "s3", endpoint_url=env.moto.endpoint_url)
            s3.put_bucket_policy(Bucket=DEMO_BUCKET, Policy=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Sid": "OnlyThroughOurGateway", "Effect": "Deny", "Principal": "*",
                    "Action": "s3:*", "Resource": [f"arn:aws:s3:::{DEMO_BUCKET}",
                                                   f"arn:aws:s3:::{DEMO_BUCKET}/*"],
                    "Condition": {"StringNotEquals": {
                        "aws:SourceVpce": ids.gateway_endpoint_id}}}]}))
            boto3.session.Session(region_name="us-east-1").client(
                "s3", endpoint_url=env.moto.endpoint_url).create_bucket(Bucket=FAR_BUCKET)
            ec2 = boto3.session.Session(region_name="eu-west-1").client(
                "ec2", endpoint_url=env.moto.endpoint_url)
            ec2.modify_vpc_endpoint(VpcEndpointId=ids.gateway_endpoint_id, PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Sid": "ReadOnly", "Effect": "Allow", "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}))
            yield env


@pytest.fixture
def config(local_env, tmp_path, monkeypatch):
    for name, value in safe_environ().items():
        monkeypatch.setenv(name, value)
    targets = [{"name": "bucket-regional", "host": "{bucket}.s3.{region}.amazonaws.com",
                "expect": "gateway", "bucket": DEMO_BUCKET},
               {"name": "far", "host": f"{FAR_BUCKET}.s3.eu-west-1.amazonaws.com",
                "expect": "gateway", "bucket": FAR_BUCKET}]
    path = local_env.write_config(tmp_path / "agent.yaml", targets=targets,
                                  state_dir=str(tmp_path / "state"),
                                  transfer={"bucket": DEMO_BUCKET})
    return load_config(path)


def test_policies_section_buckets_and_endpoints(local_env, config):
    ids = local_env.ids
    result = run_check(config, build_check_deps(config))
    report = result.report.document
    jsonschema.validate(report, report_schema())
    buckets = {b["bucket"]: b for b in report["policies"]["buckets"]}
    assert set(buckets) == {DEMO_BUCKET, FAR_BUCKET}
    demo = buckets[DEMO_BUCKET]
    assert demo["policy"] == "present" and demo["enforced"] is True
    assert demo["vpce_ids"] == [ids.gateway_endpoint_id] and demo["vpc_ids"] == []
    assert demo["decisions"]["public"] == "deny"
    assert demo["decisions"][f"via {ids.gateway_endpoint_id} in {ids.vpc_id}"] != "deny"
    assert demo["decisions"][f"via {ids.interface_endpoint_id} in {ids.vpc_id}"] == "deny"
    far = buckets[FAR_BUCKET]
    assert far["region"] == "us-east-1" and far["other_region"] is True
    assert far["policy"] == "none" and far["enforced"] is False and far["problems"] == []

    endpoints = {(e["endpoint_id"], e["purpose"]): e for e in report["policies"]["endpoints"]}
    gateway = endpoints[(ids.gateway_endpoint_id, "canary")]
    assert gateway["bucket"] == DEMO_BUCKET and gateway["prefix"] == "s3-route-agent/canary/"
    assert set(gateway["denied"]) == {"s3:PutObject", "s3:DeleteObject"}
    assert gateway["allowed"] == ["s3:GetObject", "s3:ListBucket"]
    interface = endpoints[(ids.interface_endpoint_id, "canary")]
    # moto gives the interface endpoint the full-access document AWS uses as the default.
    assert interface["allows_all"] is True and interface["denied"] == {}
    findings = report["policies"]["findings"]
    assert any(f"endpoint {ids.gateway_endpoint_id} policy does not allow s3:PutObject" in f
               and "not a network failure" in f for f in findings)
    assert any(f.startswith(f"bucket {DEMO_BUCKET} enforces") for f in findings)

    # The bucket in another region reaches the engine: check's own report calls it out.
    by_name = {t["name"]: t for t in report["targets"]}
    assert any(f"Bucket {FAR_BUCKET} is in us-east-1 (GetBucketLocation), not this VPC's "
               "eu-west-1" in e for e in by_name["far"]["evidence"])
    # Policy facts never change a path or the status: the gateway target stays OK.
    assert by_name["bucket-regional"]["path"] == "gateway"
    assert by_name["bucket-regional"]["status"] == "OK"
    assert report["errors"] == []

    text = render_text(result.report)
    assert f"  bucket {DEMO_BUCKET}: eu-west-1; enforces aws:SourceVpce " \
           f"{ids.gateway_endpoint_id} [api]" in text
    assert f"  bucket {FAR_BUCKET}: us-east-1 (another region: bypasses this VPC's gateway " \
           "endpoint); no bucket policy [api]" in text
    assert f"  endpoint {ids.gateway_endpoint_id} (gateway): denies s3:PutObject, " \
           f"s3:DeleteObject (canary actions on {DEMO_BUCKET}/s3-route-agent/canary/)" in text


def test_warm_run_makes_no_s3_calls(config):
    deps = build_check_deps(config)
    cold = run_check(config, deps).report.document["facts"]
    warm = run_check(config, deps).report.document["facts"]
    # GetBucketLocation + GetBucketPolicy per bucket, then nothing inside the TTL.
    assert cold["s3_calls"] == 4 and cold["bucket_facts_source"] == "api"
    assert warm["s3_calls"] == 0 and warm["bucket_facts_source"] == "cache"
    assert warm["ec2_calls"] == 0
    refreshed = run_check(config, deps, force_refresh=True).report.document["facts"]
    assert refreshed["s3_calls"] == 4


def test_access_denied_and_missing_policy_are_facts_not_errors(local_env, config):
    """AccessDenied on GetBucketPolicy: the policy is 'unreadable', the status does not change.
    NoSuchBucketPolicy: no policy. Answers stubbed (botocore Stubber) on the agent's S3 client."""
    client = make_client("s3", "eu-west-1", local_env.moto.endpoint_url)
    stub = Stubber(client)
    for bucket, policy_error in ((DEMO_BUCKET, "AccessDenied"),
                                 (FAR_BUCKET, "NoSuchBucketPolicy")):
        stub.add_response("get_bucket_location", {"LocationConstraint": "eu-west-1"},
                          {"Bucket": bucket})
        stub.add_client_error("get_bucket_policy", policy_error, http_status_code=403
                              if policy_error == "AccessDenied" else 404,
                              expected_params={"Bucket": bucket})
    deps = replace(build_check_deps(config), bucket_cache=None,
                   bucket_facts=lambda bucket, region: collect_bucket_facts(client, bucket))
    with stub:
        result = run_check(config, deps)
    stub.assert_no_pending_responses()
    buckets = {b["bucket"]: b for b in result.report.document["policies"]["buckets"]}
    denied = buckets[DEMO_BUCKET]
    assert denied["policy"] == "unreadable" and denied["enforced"] is None
    assert any("GetBucketPolicy" in p and "AccessDenied" in p for p in denied["problems"])
    assert any("could not be read (AccessDenied)" in e for e in denied["evidence"])
    assert buckets[FAR_BUCKET]["policy"] == "none" and buckets[FAR_BUCKET]["problems"] == []
    assert result.report.document["errors"] == [] and result.status is Status.OK
    jsonschema.validate(result.report.document, report_schema())


def test_without_collector_there_is_no_policies_section(config):
    deps = replace(build_check_deps(config), bucket_facts=None)
    report = run_check(config, deps).report.document
    assert "policies" not in report and report["facts"]["s3_calls"] == 0
    jsonschema.validate(report, report_schema())
