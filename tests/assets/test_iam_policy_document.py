"""The IAM policy in iam/ grants exactly the AWS actions the agent's code can call.

Every operation is found in the source with ``ast``: attribute names that are a boto3 client
method (``client.put_object``, ``client.create_log_stream``, also when passed around uncalled),
``get_paginator("name")`` arguments, and CamelCase operation-name constants passed to a call (the
inventory collector calls ``_pages(ec2, "DescribeRouteTables", ...)``). Operation names come from
botocore's own service models. ``agent/localenv`` and ``agent/lab`` are left out: they seed and
run the emulators on 127.0.0.1 (moto, the lab's S3 stand-in) and never run on a host with a role.

Metrics need no permission: EMF lines are shipped as logs (by the CloudWatch agent with its own
role, or through this policy's PutLogEvents) and CloudWatch Logs extracts the metrics.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "iam" / "s3-route-agent-policy.json"
EXCLUDED_PARTS = {"localenv", "lab"}
SERVICES = {"ec2": "ec2", "s3": "s3", "logs": "logs", "sts": "sts", "cloudwatch": "cloudwatch"}
# S3 operations whose IAM action is not "s3:" + the operation name (S3 user guide, "Actions,
# resources, and condition keys for Amazon S3": ListObjectsV2 and HeadBucket are authorised by
# s3:ListBucket, HeadObject by s3:GetObject; multipart steps by s3:PutObject).
S3_ACTION = {"ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
             "HeadBucket": "s3:ListBucket", "HeadObject": "s3:GetObject",
             "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
             "CompleteMultipartUpload": "s3:PutObject",
             "AbortMultipartUpload": "s3:AbortMultipartUpload"}
NO_PERMISSION = {"sts:GetCallerIdentity"}  # needs no IAM permission (STS API reference)


def _operations() -> dict[str, set[tuple[str, str]]]:
    session = botocore.session.get_session()
    index: dict[str, set[tuple[str, str]]] = {}
    for service in SERVICES:
        for op in session.get_service_model(service).operation_names:
            index.setdefault(xform_name(op), set()).add((service, op))
            index.setdefault(op, set()).add((service, op))
    return index


def code_operations() -> dict[tuple[str, str], list[str]]:
    """(service, Operation) -> where in agent/ the code reaches it."""
    index = _operations()
    found: dict[tuple[str, str], list[str]] = {}

    def note(name: str, where: str) -> None:
        owners = index[name]
        assert len(owners) == 1, f"{where}: {name} is an operation of several services {owners}"
        found.setdefault(next(iter(owners)), []).append(where)

    for path in sorted((ROOT / "agent").rglob("*.py")):
        if EXCLUDED_PARTS & set(path.relative_to(ROOT / "agent").parts):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr in index and node.attr.islower():
                note(node.attr, where)
            if isinstance(node, ast.Call):
                func = node.func
                if (isinstance(func, ast.Attribute) and func.attr == "get_paginator"
                        and node.args and isinstance(node.args[0], ast.Constant)):
                    note(str(node.args[0].value), where)
                for arg in node.args:
                    if (isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                            and arg.value in index and arg.value[:1].isupper()):
                        note(arg.value, where)
    return found


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises ``operation``."""
    if service == "s3" and operation in S3_ACTION:
        return S3_ACTION[operation]
    return f"{SERVICES[service]}:{operation}"


def policy_actions() -> dict[str, list[dict]]:
    document = json.loads(POLICY.read_text())
    assert document["Version"] == "2012-10-17"
    out: dict[str, list[dict]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action, f"wildcard action {action}"
            out.setdefault(action, []).append(statement)
    return out


def test_policy_grants_exactly_what_the_code_calls() -> None:
    used = {iam_action(s, o): where for (s, o), where in code_operations().items()}
    needed = set(used) - NO_PERMISSION
    granted = set(policy_actions())
    missing = needed - granted
    unused = granted - needed
    assert not missing, {a: used[a] for a in missing}
    assert not unused, f"granted but never called: {sorted(unused)}"


def test_scan_sees_the_known_calls() -> None:
    used = {iam_action(s, o) for s, o in code_operations()}
    assert {"ec2:DescribeRouteTables", "ec2:GetManagedPrefixListEntries", "logs:PutLogEvents",
            "logs:CreateLogStream"} <= used


def test_s3_is_limited_to_the_canary_prefix_and_logs_to_the_agent_group() -> None:
    for action, statements in policy_actions().items():
        for statement in statements:
            resources = statement["Resource"]
            resources = [resources] if isinstance(resources, str) else resources
            if action.startswith("ec2:"):
                assert resources == ["*"]  # EC2 Describe* take no resource-level permissions
            elif action == "s3:GetObject" and statement.get("Sid") == "PathOracleKeysReadOnly":
                # The path oracle (agent/oracle_read.py) reads only the oracle keys.
                assert all(r.endswith("/oracle/*") for r in resources)
            elif action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
                assert all(r.endswith("/s3-route-agent/canary/*") for r in resources)
            elif action == "s3:ListBucket":
                assert statement["Condition"]["StringLike"]["s3:prefix"] == [
                    "s3-route-agent/canary/*"]
            elif action.startswith("s3:"):
                assert all(r.startswith("arn:aws:s3:::") and "/" not in r[13:] for r in resources)
            elif action == "logs:StartQuery":
                # Flow-log corroboration (opt-in, agent/flowlogs.py) queries the VPC's flow-log
                # group, which is not the agent's own.
                assert all(":log-group:" in r for r in resources)
            elif action == "logs:GetQueryResults":
                # No resource-level permissions for GetQueryResults (Service Authorization
                # Reference, "Actions defined by Amazon CloudWatch Logs").
                assert resources == ["*"]
            elif action.startswith("logs:"):
                assert all(":log-group:/s3-route-agent/" in r for r in resources)


# ---- the policy is the generator's output (s3-route-agent iam-policy) ------------------------------

EXAMPLE_CONFIG = """\
buckets: [EXAMPLE-APP-BUCKET]
transfer: {enabled: true, bucket: EXAMPLE-CANARY-BUCKET}
oracle: {bucket: EXAMPLE-ORACLE-BUCKET}
flow_logs: {enabled: true, log_group: EXAMPLE-FLOW-LOG-GROUP}
outputs: {cloudwatch_logs: {enabled: true}}
"""
CLOUDWATCH_AGENT_POLICY = ROOT / "iam" / "cloudwatch-agent-policy.json"
CLOUDWATCH_AGENT_CONFIG = ROOT / "cloudwatch" / "amazon-cloudwatch-agent.json"


def test_example_policy_is_what_iam_policy_prints_for_an_every_feature_config(tmp_path) -> None:
    """iam/ holds the generator's output for a config that turns every AWS-calling feature on,
    so the example and the generator cannot drift apart (and the tests above hold it to the
    code's calls)."""
    from s3_route_agent.config import load_config
    from s3_route_agent.runs.iam_policy import policy_for_config

    config = tmp_path / "c.yaml"
    config.write_text(EXAMPLE_CONFIG)
    assert policy_for_config(load_config(config)) == json.loads(POLICY.read_text())


def test_cloudwatch_agent_policy_is_generated_from_its_config() -> None:
    from s3_route_agent.runs.iam_policy import policy_for_cloudwatch_agent

    document = json.loads(CLOUDWATCH_AGENT_POLICY.read_text())
    assert policy_for_cloudwatch_agent(CLOUDWATCH_AGENT_CONFIG) == document
    actions = {a for s in document["Statement"]
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    # The agent's own calls, PutRetentionPolicy because the config sets retention_in_days.
    assert {"logs:DescribeLogGroups", "logs:CreateLogGroup", "logs:CreateLogStream",
            "logs:PutLogEvents", "logs:PutRetentionPolicy"} <= actions
    groups = {f["log_group_name"] for f in json.loads(CLOUDWATCH_AGENT_CONFIG.read_text())
              ["logs"]["logs_collected"]["files"]["collect_list"]}
    shipping = next(s for s in document["Statement"] if s["Sid"] == "ShipReportFiles")
    assert {r.split(":log-group:")[1].split(":")[0] for r in shipping["Resource"]} == groups
