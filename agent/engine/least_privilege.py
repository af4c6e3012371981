"""Least-privilege IAM policies: the agent's (for exactly what one config makes it call) and the
CloudWatch agent's (for exactly the log groups its config ships to).

The agent's calls, by where they are made (``tests/assets/test_iam_policy_document.py`` finds
every AWS operation in the code and checks this module grants each of them and nothing else):

* EC2 inventory (``collectors/inventory.py``), every check: Describe* and
  GetManagedPrefixListEntries. None of them supports resource-level permissions, so they take
  ``Resource: *`` (Service Authorization Reference, "Actions defined by Amazon EC2",
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
* Bucket facts (``collectors/bucket_facts.py``): GetBucketLocation and GetBucketPolicy of every
  bucket the config names (``runs/check.checked_buckets``), on the bucket ARN.
* Test transfer (``live/transfer.py``, ``live/canary.py``): PutObject, GetObject (also
  HeadObject), DeleteObject under the canary prefix of every bucket a target transfers to, and
  ListBucket (ListObjectsV2, the stale-canary sweep) limited to that prefix with the
  ``s3:prefix`` condition key (S3 user guide, "Bucket policy examples using condition keys",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html).
* Path oracle (``live/oracle_read.py``): GetObject under the oracle prefix.
* Flow-log corroboration (``collectors/flow_logs.py``): StartQuery on the flow-log group and
  GetQueryResults, which has no resource-level permission (Service Authorization Reference,
  "Actions defined by Amazon CloudWatch Logs",
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html).
* CloudWatch Logs sink (``sinks/cloudwatch_logs.py``): PutLogEvents, and CreateLogGroup and
  CreateLogStream when ``create`` is on, on the report group and its streams.

Metrics need no permission: EMF lines are logs, and CloudWatch Logs extracts the metrics.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

logger = logging.getLogger(__name__)

POLICY_VERSION = "2012-10-17"

# Every EC2 call of the inventory collector; whether a call is made depends on the VPC (Block
# Public Access options only with a public route, exclusions only when it is on), not on the
# config, so all are granted.
EC2_INVENTORY_ACTIONS = (
    "ec2:DescribeManagedPrefixLists",
    "ec2:DescribeNatGateways",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeVpcBlockPublicAccessExclusions",
    "ec2:DescribeVpcBlockPublicAccessOptions",
    "ec2:DescribeVpcEndpoints",
    "ec2:GetManagedPrefixListEntries",
)
CANARY_OBJECT_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")
BUCKET_FACT_ACTIONS = ("s3:GetBucketLocation", "s3:GetBucketPolicy")


@dataclass(frozen=True)
class AgentCalls:
    """The AWS resources one config makes the agent call, by purpose.

    ``region`` narrows the CloudWatch Logs ARNs (None: any region); S3 bucket ARNs carry no
    region.
    """

    fact_buckets: tuple[str, ...] = ()
    transfer_buckets: tuple[str, ...] = ()
    canary_prefix: str = "s3-route-agent/canary/"
    oracle_bucket: str | None = None
    oracle_prefix: str = "oracle/"
    flow_log_group: str | None = None
    report_log_group: str | None = None
    create_log_group: bool = True
    region: str | None = None


def _bucket_arns(buckets: Iterable[str], suffix: str = "") -> list[str]:
    return [f"arn:aws:s3:::{b}{suffix}" for b in dict.fromkeys(buckets)]


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def _log_group_arn(region: str | None, group: str, streams: bool = False) -> str:
    # Log-group ARNs: arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:log-stream:STREAM]; the
    # account is left as * so one document serves every account of a fleet.
    base = f"arn:aws:logs:{region or '*'}:*:log-group:{group}"
    return f"{base}:log-stream:*" if streams else f"{base}:*"


def agent_policy(calls: AgentCalls) -> dict[str, Any]:
    """The identity policy granting exactly ``calls`` (see the module docstring for each)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "Ec2InventoryReadOnly", "Effect": "Allow",
         "Action": list(EC2_INVENTORY_ACTIONS), "Resource": "*"}]
    transfer = list(dict.fromkeys(calls.transfer_buckets))
    if transfer:
        statements.append({
            "Sid": "CanaryObjectsOnly", "Effect": "Allow", "Action": list(CANARY_OBJECT_ACTIONS),
            "Resource": _one_or_list(_bucket_arns(transfer, f"/{calls.canary_prefix}*"))})
    if calls.oracle_bucket:
        statements.append({
            "Sid": "PathOracleKeysReadOnly", "Effect": "Allow", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{calls.oracle_bucket}/{calls.oracle_prefix}*"})
    if transfer:
        statements.append({
            "Sid": "ListCanaryPrefixForStaleSweep", "Effect": "Allow", "Action": "s3:ListBucket",
            "Resource": _one_or_list(_bucket_arns(transfer)),
            "Condition": {"StringLike": {"s3:prefix": [f"{calls.canary_prefix}*"]}}})
    if calls.fact_buckets:
        statements.append({
            "Sid": "BucketFactsRegionAndPolicy", "Effect": "Allow",
            "Action": list(BUCKET_FACT_ACTIONS),
            "Resource": _one_or_list(_bucket_arns(calls.fact_buckets))})
    if calls.flow_log_group:
        statements.append({
            "Sid": "FlowLogCorroborationOptIn", "Effect": "Allow", "Action": "logs:StartQuery",
            "Resource": _log_group_arn(calls.region, calls.flow_log_group)})
        statements.append({
            "Sid": "FlowLogQueryResultsNoResourceLevel", "Effect": "Allow",
            "Action": "logs:GetQueryResults", "Resource": "*"})
    if calls.report_log_group:
        actions = (["logs:CreateLogGroup", "logs:CreateLogStream"] if calls.create_log_group
                   else [])
        statements.append({
            "Sid": "ReportsToCloudWatchLogs", "Effect": "Allow",
            "Action": [*actions, "logs:PutLogEvents"],
            "Resource": [_log_group_arn(calls.region, calls.report_log_group),
                         _log_group_arn(calls.region, calls.report_log_group, streams=True)]})
    return {"Version": POLICY_VERSION, "Statement": statements}


def shipped_log_groups(cloudwatch_agent_config: Mapping[str, Any]) -> dict[str, int | None]:
    """Log group -> retention_in_days (None: left as it is) of a CloudWatch agent config's
    ``logs.logs_collected.files.collect_list``."""
    files = (cloudwatch_agent_config.get("logs", {}).get("logs_collected", {})
             .get("files", {}).get("collect_list", []))
    groups: dict[str, int | None] = {}
    for entry in files:
        name = entry.get("log_group_name")
        if not name:
            continue
        days = entry.get("retention_in_days")
        groups[name] = days if isinstance(days, int) and days > 0 else groups.get(name)
    return groups


def cloudwatch_agent_policy(cloudwatch_agent_config: Mapping[str, Any],
                            region: str | None = None) -> dict[str, Any]:
    """The identity policy the CloudWatch agent needs to ship exactly the files its config
    names to their log groups.

    The agent describes the log groups at start (DescribeLogGroups, which lists and so is
    granted on ``log-group:*``), creates the group and stream when missing, sends with
    PutLogEvents (DescribeLogStreams as well, in older agents), and calls PutRetentionPolicy
    when ``retention_in_days`` is set ("Create IAM roles and users for use with the CloudWatch
    agent", https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/create-iam-roles-for-cloudwatch-agent.html;
    "Manually create or edit the CloudWatch agent configuration file", ``retention_in_days``,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-Configuration-File-Details.html).
    """
    groups = shipped_log_groups(cloudwatch_agent_config)
    if not groups:
        raise ValueError("the CloudWatch agent config ships no file to a log group "
                         "(logs.logs_collected.files.collect_list[].log_group_name)")
    group_arns = [_log_group_arn(region, g) for g in groups]
    stream_arns = [_log_group_arn(region, g, streams=True) for g in groups]
    statements: list[dict[str, Any]] = [
        {"Sid": "DescribeLogGroupsListsAll", "Effect": "Allow", "Action": "logs:DescribeLogGroups",
         "Resource": f"arn:aws:logs:{region or '*'}:*:log-group:*"},
        {"Sid": "ShipReportFiles", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
                    "logs:PutLogEvents"],
         "Resource": [*group_arns, *stream_arns]}]
    retained = [_log_group_arn(region, g) for g, days in groups.items() if days]
    if retained:
        statements.append({"Sid": "RetentionInDays", "Effect": "Allow",
                           "Action": "logs:PutRetentionPolicy",
                           "Resource": _one_or_list(retained)})
    return {"Version": POLICY_VERSION, "Statement": statements}


def render_policy(document: Mapping[str, Any]) -> str:
    """A policy document as indented JSON, ready for ``aws iam put-role-policy``."""
    return json.dumps(document, indent=2)
