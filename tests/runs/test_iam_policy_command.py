"""``s3-route-agent iam-policy --config FILE``: the least-privilege policy for exactly what that
config makes the agent call, checked against the operations the code contains
(``tests/assets/test_iam_policy_document.py`` finds them in the source)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from s3_route_agent.config import load_config
from s3_route_agent.devenv.localenv.environment import safe_environ
from s3_route_agent.engine.least_privilege import (EC2_INVENTORY_ACTIONS, AgentCalls,
                                                   agent_policy, cloudwatch_agent_policy)
from s3_route_agent.runs.iam_policy import agent_calls, policy_for_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "assets"))
from test_iam_policy_document import NO_PERMISSION, code_operations, iam_action  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def _grants(document: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            out.setdefault(action, set()).update(
                [resources] if isinstance(resources, str) else resources)
    return out


def test_minimal_config_grants_the_inventory_and_the_facts_of_each_bucket(tmp_path) -> None:
    config = load_config(_config(tmp_path, "buckets: [app-data, app-logs]\n"))
    grants = _grants(policy_for_config(config))
    assert set(grants) == {*EC2_INVENTORY_ACTIONS, "s3:GetBucketLocation", "s3:GetBucketPolicy"}
    # check asks GetBucketLocation and GetBucketPolicy of every configured bucket.
    assert grants["s3:GetBucketLocation"] == {"arn:aws:s3:::app-data", "arn:aws:s3:::app-logs"}
    assert grants["s3:GetBucketPolicy"] == grants["s3:GetBucketLocation"]


def test_no_bucket_no_s3_permission(tmp_path) -> None:
    grants = _grants(policy_for_config(load_config(_config(tmp_path, "default_expect: any\n"))))
    assert set(grants) == set(EC2_INVENTORY_ACTIONS)


def test_every_feature_on_grants_exactly_what_the_code_calls(tmp_path) -> None:
    config = load_config(_config(tmp_path, """\
aws: {region: eu-west-1}
buckets: [app-data]
targets:
  - {name: regional, host: "{bucket}.s3.{region}.amazonaws.com", bucket: app-data}
  - {name: global, host: "s3.amazonaws.com"}
  - {name: vpce, host: "bucket.vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com", bucket: ep-bucket}
transfer: {enabled: true, bucket: canary-bucket, prefix: canary/}
oracle: {bucket: oracle-bucket, prefix: o/}
flow_logs: {enabled: true, log_group: /vpc/flows}
outputs: {cloudwatch_logs: {enabled: true, log_group: /team/reports}}
"""))
    grants = _grants(policy_for_config(config))
    needed = {iam_action(s, o) for s, o in code_operations()} - NO_PERMISSION
    assert set(grants) == needed
    # Canaries go to the bucket each target transfers to, under the prefix only.
    assert grants["s3:PutObject"] == {"arn:aws:s3:::app-data/canary/*",
                                      "arn:aws:s3:::canary-bucket/canary/*",
                                      "arn:aws:s3:::ep-bucket/canary/*"}
    assert grants["s3:ListBucket"] == {"arn:aws:s3:::app-data", "arn:aws:s3:::canary-bucket",
                                       "arn:aws:s3:::ep-bucket"}
    assert "arn:aws:s3:::oracle-bucket/o/*" in grants["s3:GetObject"]
    assert grants["s3:GetBucketLocation"] == {
        f"arn:aws:s3:::{b}" for b in ("app-data", "ep-bucket", "canary-bucket", "oracle-bucket")}
    assert grants["logs:StartQuery"] == {"arn:aws:logs:eu-west-1:*:log-group:/vpc/flows:*"}
    assert grants["logs:PutLogEvents"] == {
        "arn:aws:logs:eu-west-1:*:log-group:/team/reports:*",
        "arn:aws:logs:eu-west-1:*:log-group:/team/reports:log-stream:*"}


def test_features_off_grant_nothing_for_them(tmp_path) -> None:
    """An oracle bucket without transfers is never read; flow logs and the CloudWatch Logs sink
    switched off need no logs permission; create: false drops CreateLogGroup/Stream."""
    config = load_config(_config(tmp_path, """\
oracle: {bucket: oracle-bucket}
flow_logs: {enabled: false, log_group: /vpc/flows}
outputs: {cloudwatch_logs: {enabled: true, create: false}}
"""))
    calls = agent_calls(config)
    assert calls.transfer_buckets == () and calls.oracle_bucket is None
    grants = _grants(agent_policy(calls))
    assert "s3:GetObject" not in grants and "logs:StartQuery" not in grants
    assert "logs:CreateLogGroup" not in grants and "logs:PutLogEvents" in grants


def test_cloudwatch_agent_policy_grants_retention_only_where_set() -> None:
    config = {"logs": {"logs_collected": {"files": {"collect_list": [
        {"file_path": "/a", "log_group_name": "/g/kept", "retention_in_days": 14},
        {"file_path": "/b", "log_group_name": "/g/forever"}]}}}}
    grants = _grants(cloudwatch_agent_policy(config, region="eu-west-1"))
    assert grants["logs:PutRetentionPolicy"] == {"arn:aws:logs:eu-west-1:*:log-group:/g/kept:*"}
    assert grants["logs:DescribeLogGroups"] == {"arn:aws:logs:eu-west-1:*:log-group:*"}
    with pytest.raises(ValueError, match="ships no file"):
        cloudwatch_agent_policy({"logs": {}})


def test_cli_prints_the_policy_and_refuses_a_bad_call(tmp_path) -> None:
    config = _config(tmp_path, "buckets: [app-data]\n")
    run = [sys.executable, "-m", "s3_route_agent", "iam-policy"]
    proc = subprocess.run([*run, "--config", str(config)], capture_output=True, text=True,
                          env=safe_environ(), timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == agent_policy(AgentCalls(fact_buckets=("app-data",)))
    # Zero-config: without --config, $S3_ROUTE_AGENT_CONFIG (else /etc/..., else defaults).
    located = subprocess.run(run, capture_output=True, text=True, timeout=60, cwd=ROOT,
                             env={**safe_environ(), "S3_ROUTE_AGENT_CONFIG": str(config)})
    assert located.returncode == 0 and json.loads(located.stdout) == json.loads(proc.stdout)
    bad = subprocess.run([*run, "--config", str(config), "--cloudwatch-agent", str(config)],
                         capture_output=True, text=True, env=safe_environ(), timeout=60)
    assert bad.returncode == 3 and "not both" in bad.stderr and "Traceback" not in bad.stderr
    cw = subprocess.run([*run, "--cloudwatch-agent", str(config)], capture_output=True,
                        text=True, env=safe_environ(), timeout=60)
    assert cw.returncode == 3 and "cannot read the CloudWatch agent config" in cw.stderr
