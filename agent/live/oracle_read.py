"""The path oracle's reads, part of the transfer step: GET ``oracle/VPCE-ID`` for each S3 endpoint
of the VPC and ``oracle/public`` through the target's own name, so S3 itself states the path.

The GETs use the transfer's client (``client_for``) instrumented as the transfer's is
(:func:`s3_route_agent.live.transfer.instrument`), so each reading records the peer address its connection really went to, and proxies from the
environment apply exactly as for the canary. A 403 AccessDenied is S3's answer (a policy fact);
only a failure to reach S3 is a network fact. The interpretation is :func:`s3_route_agent.engine.oracle.interpret_all`.

IAM: ``s3:GetObject`` on ``arn:aws:s3:::ORACLE-BUCKET/oracle/*``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping

from s3_route_agent.engine.evidence import OracleRead, OracleSection, TransferPlan
from s3_route_agent.engine.model import PathKind
from s3_route_agent.engine.oracle import OK_200, interpret_all, oracle_keys
from s3_route_agent.live.transfer import ClientFor, ConnectionRecorder, instrument, run_step

logger = logging.getLogger(__name__)


def oracle_plan(plan: TransferPlan, bucket: str) -> TransferPlan:
    """The transfer plan pointed at the oracle bucket, keeping the target's endpoint.

    A name without a bucket (``s3.R.amazonaws.com``, path style) is used as it is; a name that
    carries the canary bucket is reached as the oracle bucket's sibling name of the same form
    (same zone, same DNS wildcard, same route). Buckets with dots go path style (S3 user guide,
    "Virtual hosting of buckets": a wildcard certificate covers one label).
    """
    if plan.bucket == bucket:
        return plan
    style = "path" if "." in bucket else plan.addressing_style
    return dataclasses.replace(plan, bucket=bucket, addressing_style=style)


def _outcome(step: Any) -> str:
    if step.ok:
        return OK_200
    if step.error_code == "network_error":
        return f"network error: {step.error_message}"
    return str(step.error_code or f"HTTP {step.http_status}")


def read_oracle(plan: TransferPlan, bucket: str, prefix: str, endpoint_types: Mapping[str, str],
                predicted: PathKind | None, predicted_endpoint: str | None, timeout: float,
                client_for: ClientFor) -> OracleSection:
    """GET every oracle key through ``plan``'s endpoint; the target's ``oracle`` section.

    ``endpoint_types`` maps each S3 endpoint id of the VPC to its type (Gateway/Interface).
    ``client_for(plan, timeout)`` builds the S3 client. Never raises for S3 or network failures.
    """
    target_plan = oracle_plan(plan, bucket)
    recorder = ConnectionRecorder()
    keys = {vpce: oracle_keys(vpce, prefix)[0] for vpce in endpoint_types}
    public_key = oracle_keys("vpce-x", prefix)[1]
    reads: list[OracleRead] = []
    outcomes: dict[str, str] = {}
    for name, key in [*keys.items(), ("public", public_key)]:
        def get(key: str = key) -> tuple[Any, int]:
            client = instrument(client_for(target_plan, timeout), recorder)
            response = client.get_object(Bucket=target_plan.bucket, Key=key)
            return response, len(response["Body"].read())
        step = run_step("get", recorder, get)
        outcomes[name] = _outcome(step)
        reads.append(OracleRead(key, outcomes[name], step.http_status, step.peer_address,
                                step.served_by))
    public = outcomes.pop("public")
    evidence = interpret_all(outcomes, public, endpoint_types, predicted, predicted_endpoint)
    host = target_plan.endpoint_url.split("://", 1)[1]
    if target_plan.addressing_style == "virtual":
        host = f"{target_plan.bucket}.{host}"
    logger.info("oracle through %s: %s", host, "; ".join(evidence.evidence))
    return OracleSection(bucket=bucket, prefix=prefix, host=host, reads=tuple(reads),
                         evidence=evidence)
