"""The path oracle: a bucket policy under which S3 itself says which path a request took.

On a dedicated canary bucket, ``oracle/VPCE-ID`` can be read only through that VPC endpoint and
``oracle/public`` only from outside any endpoint. ``aws:SourceVpce`` is in the request context
exactly when a request arrives through a VPC endpoint — gateway or interface — and is absent
otherwise ("AWS global condition context keys",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-sourcevpce;
S3 user guide, "Controlling access from VPC endpoints with bucket policies",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies-vpc-endpoint.html).
So reading both keys gives S3's own statement of the path: 200 versus AccessDenied. That answer
outranks the prediction from routes and DNS; a 403 here is a policy fact, never a network error.

The policy only denies; reads are granted by the reader's IAM policy (same account), or by the
optional Allow for ``principal``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from s3_route_agent.engine.model import PRIVATE_PATHS, PathKind

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "oracle/"
PUBLIC_KEY_NAME = "public"

# What a GET of an oracle key came back with.
OK_200 = "200"
ACCESS_DENIED = "AccessDenied"


def oracle_keys(vpce_id: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """The two keys: readable only through ``vpce_id``, readable only from outside endpoints."""
    return f"{prefix}{vpce_id}", f"{prefix}{PUBLIC_KEY_NAME}"


def oracle_policy(bucket: str, vpce_ids: Iterable[str], prefix: str = DEFAULT_PREFIX,
                  principal: str | None = None) -> dict[str, Any]:
    """The bucket policy of the path oracle for one or more endpoints.

    * ``oracle/VPCE-ID``: Deny GetObject when aws:SourceVpce is not VPCE-ID. A request from
      outside any endpoint has no aws:SourceVpce, and a negated operator on an absent key is true
      (IAM User Guide, "Condition operators"), so it is denied too.
    * ``oracle/public``: Deny GetObject when aws:SourceVpce is present (Null = false).
    """
    vpce_ids = list(dict.fromkeys(vpce_ids))
    if not vpce_ids:
        raise ValueError("the oracle needs at least one VPC endpoint id")
    for vpce in vpce_ids:
        if not vpce.startswith("vpce-"):
            raise ValueError(f"{vpce!r} is not a VPC endpoint id (vpce-…)")
    statements: list[dict[str, Any]] = []
    for vpce in vpce_ids:
        key, _ = oracle_keys(vpce, prefix)
        statements.append({
            "Sid": f"OracleOnlyThrough{vpce.replace('-', '')}",
            "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/{key}",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": vpce}}})
    _, public_key = oracle_keys(vpce_ids[0], prefix)
    statements.append({
        "Sid": "OraclePublicOnlyOutsideEndpoints",
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/{public_key}",
        "Condition": {"Null": {"aws:SourceVpce": "false"}}})
    if principal:
        statements.append({
            "Sid": "OracleReader", "Effect": "Allow", "Principal": {"AWS": principal},
            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"})
    return {"Version": "2012-10-17", "Statement": statements}


def render_oracle_policy(bucket: str, vpce_ids: Iterable[str], prefix: str = DEFAULT_PREFIX,
                         principal: str | None = None) -> str:
    """The policy as indented JSON, ready for ``aws s3api put-bucket-policy --policy``."""
    return json.dumps(oracle_policy(bucket, vpce_ids, prefix, principal), indent=2)


@dataclass(frozen=True)
class OracleReading:
    """What GET returned for the two oracle keys: "200", "AccessDenied", or another error text."""

    vpce_id: str
    endpoint_key: str                 # outcome for oracle/VPCE-ID
    public_key: str                   # outcome for oracle/public


@dataclass(frozen=True)
class OracleEvidence:
    """S3's own statement of the path (strongest evidence), compared with the prediction."""

    conclusive: bool
    through_endpoint: bool | None     # True: via vpce_id; False: not via any endpoint
    vpce_id: str | None               # the endpoint S3 says the request came through
    path: PathKind | None                 # gateway/interface (from the endpoint's type) or public
    agrees: bool | None               # with the predicted path; None when no comparison
    kind: str                         # "policy" (S3 answered) or "network" (it did not)
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"conclusive": self.conclusive, "through_endpoint": self.through_endpoint,
                "vpce_id": self.vpce_id, "path": self.path.value if self.path else None,
                "agrees_with_prediction": self.agrees, "kind": self.kind,
                "strength": "s3-stated" if self.conclusive else "none",
                "evidence": list(self.evidence)}


def _is_s3_answer(outcome: str) -> bool:
    return outcome in (OK_200, ACCESS_DENIED)


def _is_s3_error_code(outcome: str) -> bool:
    """An S3 error code (``NoSuchKey``, ``NoSuchBucket``): S3 answered, but not as the oracle."""
    return re.fullmatch(r"[A-Z][A-Za-z0-9]+", outcome) is not None and outcome != ACCESS_DENIED


def interpret(reading: OracleReading, endpoint_type: str | None = None,
              predicted: PathKind | None = None, predicted_endpoint: str | None = None,
              ) -> OracleEvidence:
    """Turn the two GET outcomes into a path; compare with the prediction.

    ============  ============  =====================================================
    oracle/VPCE   oracle/public  meaning
    ============  ============  =====================================================
    200           AccessDenied  through VPCE (gateway or interface, by its type)
    AccessDenied  200           outside any endpoint: the public path
    AccessDenied  AccessDenied  through another endpoint (or IAM denies the reader)
    200           200           the policy is not in force (missing, or an emulator
                                 that ignores conditions): inconclusive
    other         any           S3 did not answer: a network fact, not a policy fact
    ============  ============  =====================================================
    """
    vpce = reading.vpce_id
    key_vpce, key_public = reading.endpoint_key, reading.public_key
    setup = [f"oracle/{name}: {outcome}" for name, outcome in
             ((vpce, key_vpce), (PUBLIC_KEY_NAME, key_public)) if _is_s3_error_code(outcome)]
    if setup and all(_is_s3_answer(o) or _is_s3_error_code(o) for o in (key_vpce, key_public)):
        # S3 answered with an error that is neither 200 nor AccessDenied: the keys or the bucket
        # are missing. Not a network fact, and not a statement about the path either.
        return OracleEvidence(False, None, None, None, None, "setup", (
            f"S3 answered {'; '.join(setup)}: the oracle keys or bucket are not set up "
            "(create them and apply `s3-route-agent oracle-policy`); no conclusion.",))
    if not (_is_s3_answer(key_vpce) and _is_s3_answer(key_public)):
        failed = [f"oracle/{name}: {outcome}" for name, outcome in
                  ((vpce, key_vpce), (PUBLIC_KEY_NAME, key_public)) if not _is_s3_answer(outcome)]
        return OracleEvidence(False, None, None, None, None, "network",
                              (f"S3 gave no answer ({'; '.join(failed)}): the oracle says "
                               "nothing about the path; this is a network failure, not a "
                               "policy decision.",))
    if key_vpce == OK_200 and key_public == ACCESS_DENIED:
        path = {"gateway": PathKind.GATEWAY, "interface": PathKind.INTERFACE}.get(
            (endpoint_type or "").lower())
        sentence = (f"S3 served oracle/{vpce} and refused oracle/public: the request arrived "
                    f"through {vpce}" + (f" ({endpoint_type.lower()} endpoint)." if endpoint_type
                                         else "."))
        return _compared(True, vpce, path, predicted, predicted_endpoint, sentence)
    if key_vpce == ACCESS_DENIED and key_public == OK_200:
        sentence = (f"S3 refused oracle/{vpce} and served oracle/public: the request arrived "
                    "from outside any VPC endpoint (public path).")
        return _compared(False, None, PathKind.PUBLIC, predicted, predicted_endpoint, sentence)
    if key_vpce == ACCESS_DENIED and key_public == ACCESS_DENIED:
        return OracleEvidence(True, True, None, None, None, "policy", (
            f"S3 refused both keys: the request came through a VPC endpoint other than {vpce} "
            "(aws:SourceVpce present but different), or the reader's IAM policy denies "
            "s3:GetObject on the oracle keys.",))
    return OracleEvidence(False, None, None, None, None, "policy", (
        "S3 served both keys: the oracle policy is not in force (not applied, or an emulator "
        "that ignores policy conditions); no conclusion.",))


def _compared(through: bool, vpce: str | None, path: PathKind | None, predicted: PathKind | None,
              predicted_endpoint: str | None, sentence: str) -> OracleEvidence:
    evidence = [sentence]
    agrees: bool | None = None
    if predicted is not None:
        if through:
            agrees = (predicted in PRIVATE_PATHS
                      and (path is None or predicted is path)
                      and (predicted_endpoint in (None, vpce)))
        else:
            agrees = predicted is PathKind.PUBLIC
        if agrees:
            evidence.append(f"This confirms the prediction ({predicted.value}).")
        else:
            evidence.append(f"This contradicts the prediction ({predicted.value}"
                            + (f" via {predicted_endpoint}" if predicted_endpoint else "")
                            + "): S3's answer wins; the facts behind the prediction are wrong or "
                              "stale.")
    return OracleEvidence(True, through, vpce, path, agrees, "policy", tuple(evidence))


def interpret_all(endpoint_outcomes: Mapping[str, str], public_outcome: str,
                  endpoint_types: Mapping[str, str] | None = None,
                  predicted: PathKind | None = None, predicted_endpoint: str | None = None,
                  ) -> OracleEvidence:
    """One reading over every S3 endpoint of the VPC: ``oracle/VPCE`` for each, ``oracle/public``.

    Each endpoint's pair goes through :func:`interpret`; the endpoint S3 served (200) names the
    path, else all-denied plus a served ``oracle/public`` names the public path. A network
    failure on any key makes the whole reading a network fact. With no endpoint at all,
    ``oracle/public`` alone answers: 200 public, AccessDenied through some endpoint elsewhere.
    """
    types = dict(endpoint_types or {})
    if not endpoint_outcomes:
        if public_outcome == OK_200:
            return _compared(False, None, PathKind.PUBLIC, predicted, predicted_endpoint,
                             "S3 served oracle/public: the request arrived from outside any VPC "
                             "endpoint (public path).")
        if public_outcome == ACCESS_DENIED:
            return OracleEvidence(True, True, None, None, None, "policy", (
                "S3 refused oracle/public: the request came through a VPC endpoint, and this "
                "VPC has no S3 endpoint to name.",))
        return interpret(OracleReading("vpce-none", OK_200, public_outcome))
    readings = [interpret(OracleReading(vpce, outcome, public_outcome), types.get(vpce),
                          predicted, predicted_endpoint)
                for vpce, outcome in endpoint_outcomes.items()]
    for kind in ("network", "setup"):
        failed = next((r for r in readings if r.kind == kind), None)
        if failed is not None:
            return failed
    named = next((r for r in readings if r.conclusive and r.vpce_id), None)
    if named is not None:
        return named
    public = next((r for r in readings if r.conclusive and r.path is PathKind.PUBLIC), None)
    return public or readings[0]
