"""``iam-policy``: the least-privilege policies for one config (the agent's) and for one
CloudWatch agent config (the CloudWatch agent's). What each grants and why is in
:mod:`s3_route_agent.engine.least_privilege`; this module reads the configs into
:class:`~s3_route_agent.engine.least_privilege.AgentCalls`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from s3_route_agent.config import AgentConfig, targets_for
from s3_route_agent.engine.least_privilege import (AgentCalls, agent_policy,
                                                   cloudwatch_agent_policy)
from s3_route_agent.errors import AgentError
from s3_route_agent.live.transfer import plan_transfer
from s3_route_agent.runs.check import checked_buckets

logger = logging.getLogger(__name__)

# Fills ``{region}`` in target names when the config names no region: bucket names (all the
# policy needs from a hostname) do not depend on it.
PLACEHOLDER_REGION = "us-east-1"


def agent_calls(config: AgentConfig) -> AgentCalls:
    """What ``config`` makes the agent call: the buckets whose facts ``check`` reads, the buckets
    its test transfers write canaries to, the oracle, the flow-log group, the report group.

    Names the host is seen using at run time (``observe.discovered_targets``) are not known
    here; a bucket among them shows as "unreadable" in the policies section until it is added
    to ``buckets``.
    """
    region = config.aws.region
    targets = targets_for(config, region or PLACEHOLDER_REGION)
    transfer: list[str] = []
    if config.transfer.enabled:
        for target in targets:
            plan, _ = plan_transfer(target, region or PLACEHOLDER_REGION, config.transfer.bucket)
            if plan is not None:
                transfer.append(plan.bucket)
    flow_group = config.flow_logs.log_group if config.flow_logs.enabled else None
    cw = config.outputs.cloudwatch_logs
    return AgentCalls(
        fact_buckets=checked_buckets(config, targets),
        transfer_buckets=tuple(dict.fromkeys(transfer)),
        canary_prefix=config.transfer.prefix,
        oracle_bucket=config.oracle.bucket if transfer else None,  # read beside a transfer
        oracle_prefix=config.oracle.prefix,
        flow_log_group=flow_group,
        report_log_group=cw.log_group if cw.enabled else None,
        create_log_group=cw.create,
        region=region)


def policy_for_config(config: AgentConfig) -> dict[str, Any]:
    """The agent's least-privilege identity policy for ``config``."""
    return agent_policy(agent_calls(config))


def policy_for_cloudwatch_agent(path: str | Path, region: str | None = None) -> dict[str, Any]:
    """The CloudWatch agent's policy for the agent config (JSON) at ``path``."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AgentError("config", f"{path}: cannot read the CloudWatch agent config: "
                         f"{' '.join(str(exc).split())}") from exc
    try:
        return cloudwatch_agent_policy(document, region)
    except ValueError as exc:
        raise AgentError("config", f"{path}: {exc}") from exc
