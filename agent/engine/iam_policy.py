"""A small IAM policy evaluator for bucket policies and VPC endpoint policies. Pure: no I/O.

It answers two questions for the exact action and resource the agent uses:

* does a bucket enforce ``aws:SourceVpce`` / ``aws:SourceVpc``, and for which ids?
* does an endpoint policy allow the agent's canary actions on the canary bucket?

Semantics follow the IAM User Guide:

* evaluation: an explicit Deny wins, else an Allow allows, else the request is implicitly denied
  ("Policy evaluation logic",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html);
* Action/NotAction match case-insensitively with ``*`` and ``?`` wildcards; Resource/NotResource
  case-sensitively with the same wildcards ("IAM JSON policy elements: Action / Resource");
* several values of one condition key are ORed, several keys and several operators are ANDed;
  a condition key that is absent from the request makes a positive operator false and a negated
  operator (StringNotEquals, StringNotLike, NotIpAddress, ArnNotLike, ...) true; ``...IfExists``
  is true when the key is absent; ``ForAnyValue:`` is false and ``ForAllValues:`` true for an
  absent key ("IAM JSON policy elements: Condition operators",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html;
  "Multivalued context keys",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html);
* condition key names are case-insensitive, String values case-sensitive (except *IgnoreCase);
* ``aws:SourceVpce`` and ``aws:SourceVpc`` are in the request context only when the request came
  through a VPC endpoint, and ``aws:SourceIp`` is then absent ("AWS global condition context
  keys", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html);
  so are the network-perimeter keys added since 2024: ``aws:VpceAccount`` (the account that owns
  the endpoint), ``aws:VpceOrgID`` and ``aws:VpceOrgPaths`` (its organization and OU paths) and
  ``aws:SourceVpcArn`` (the ARN of the endpoint's VPC). The agent knows the endpoint's owner and
  VPC; it does not know the organization, so a condition on ``aws:VpceOrgID`` /
  ``aws:VpceOrgPaths`` of a request through an endpoint is reported as not evaluated rather than
  guessed (same page).

Not modelled (reported as such when met): policy variables (``${...}``), NotPrincipal with
Deny's special cases, and operators other than the String*, Arn*, Bool, Null and IP families.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

logger = logging.getLogger(__name__)

ALLOW = "allow"
DENY = "deny"
IMPLICIT_DENY = "implicit_deny"

SOURCE_VPCE = "aws:sourcevpce"
SOURCE_VPC = "aws:sourcevpc"
SOURCE_IP = "aws:sourceip"
VPCE_ACCOUNT = "aws:VpceAccount"
VPCE_ORG_ID = "aws:VpceOrgID"
VPCE_ORG_PATHS = "aws:VpceOrgPaths"
SOURCE_VPC_ARN = "aws:SourceVpcArn"
# Keys present in the context of a request through a VPC endpoint, besides SourceVpce/SourceVpc.
ENDPOINT_CONTEXT_KEYS = (VPCE_ACCOUNT, VPCE_ORG_ID, VPCE_ORG_PATHS, SOURCE_VPC_ARN)

# The actions the agent's canary transfer performs (issue 3) and their resources.
CANARY_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket")

_NEGATED = {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "notipaddress",
            "arnnotequals", "arnnotlike"}
_SUPPORTED = {"stringequals", "stringnotequals", "stringequalsignorecase",
              "stringnotequalsignorecase", "stringlike", "stringnotlike", "arnequals", "arnlike",
              "arnnotequals", "arnnotlike", "bool", "null", "ipaddress", "notipaddress"}


class PolicyError(ValueError):
    """A policy document that is not JSON or not shaped like an IAM policy."""


@dataclass(frozen=True)
class Request:
    """What is asked: one action on one resource, by a principal, with a request context."""

    action: str                                  # "s3:GetObject"
    resource: str                                # "arn:aws:s3:::bucket/key"
    principal: str | None = None                 # "arn:aws:iam::123456789012:role/agent"
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    # Keys the request carries whose values the agent does not know (aws:VpceOrgID of a request
    # through an endpoint): a condition on them is reported as not evaluated.
    unknown_keys: tuple[str, ...] = ()

    def is_unknown(self, key: str) -> bool:
        """True when the request carries ``key`` but its value is not known to the agent."""
        return key.lower() in (k.lower() for k in self.unknown_keys)

    def value(self, key: str) -> list[str] | None:
        """The context values for ``key`` (case-insensitive name), or None when absent."""
        for name, value in self.context.items():
            if name.lower() == key.lower():
                if isinstance(value, str):
                    return [value]
                return [str(v) for v in value]
        return None


@dataclass(frozen=True)
class StatementResult:
    """How one statement applied to a request."""

    sid: str
    effect: str                                  # "Allow" or "Deny"
    applies: bool
    why: str


@dataclass(frozen=True)
class Decision:
    """The result of evaluating one policy for one request."""

    effect: str                                  # ALLOW, DENY or IMPLICIT_DENY
    deciding: tuple[StatementResult, ...]        # the statements that produced the effect
    unsupported: tuple[str, ...] = ()            # constructs met that the evaluator does not model

    @property
    def allowed(self) -> bool:
        """True for an explicit Allow with no explicit Deny."""
        return self.effect == ALLOW

    def explain(self) -> str:
        """One sentence a person reads."""
        if not self.deciding:
            return "no statement applies: implicitly denied (no Allow)"
        names = ", ".join(f"{s.sid} ({s.why})" for s in self.deciding)
        verb = {ALLOW: "allowed by", DENY: "explicitly denied by"}.get(self.effect, "")
        return f"{verb} {names}"


def load_policy(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse a policy document (JSON text or dict) and check its shape."""
    if isinstance(document, str):
        try:
            policy = json.loads(document)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"policy is not JSON: {exc.msg} at line {exc.lineno}") from None
    else:
        policy = dict(document)
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise PolicyError("policy has no Statement list")
    policy["Statement"] = statements
    return policy


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _glob(pattern: str, value: str, ignore_case: bool) -> bool:
    """IAM wildcard match: ``*`` any run of characters, ``?`` one character, nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) \
        is not None


def action_matches(patterns: Iterable[str], action: str) -> bool:
    """True when any Action pattern matches ``action`` (case-insensitive, wildcards)."""
    return any(_glob(p, action, ignore_case=True) for p in patterns)


def resource_matches(patterns: Iterable[str], resource: str) -> bool:
    """True when any Resource pattern matches ``resource`` (case-sensitive, wildcards)."""
    return any(_glob(p, resource, ignore_case=False) for p in patterns)


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else None


def principal_matches(element: Any, principal: str | None) -> bool:
    """Does a statement's Principal cover ``principal``?

    ``"*"`` and ``{"AWS": "*"}`` cover everyone, anonymous included; an account id or
    ``arn:aws:iam::ACCOUNT:root`` covers every principal of that account ("AWS JSON policy
    elements: Principal", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
    """
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    for kind, values in element.items():
        for value in _as_list(values):
            if value == "*":
                return True
            if principal is None or kind != "AWS":
                continue
            if value == principal:
                return True
            account = value if re.fullmatch(r"\d{12}", value) else None
            if value.endswith(":root"):
                account = _account_of(value)
            if account and _account_of(principal) == account:
                return True
    return False


def _ip_in(value: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _value_matches(base: str, request_value: str, policy_values: list[str]) -> bool:
    """Positive form of ``base`` operator: does one request value match any policy value?"""
    if base in ("stringequals", "stringnotequals"):
        return request_value in policy_values
    if base in ("stringequalsignorecase", "stringnotequalsignorecase"):
        return request_value.lower() in (v.lower() for v in policy_values)
    if base in ("stringlike", "stringnotlike", "arnlike", "arnnotlike", "arnequals",
                "arnnotequals"):
        return any(_glob(v, request_value, ignore_case=False) for v in policy_values)
    if base in ("ipaddress", "notipaddress"):
        return any(_ip_in(request_value, v) for v in policy_values)
    if base == "bool":
        return request_value.lower() in (v.lower() for v in policy_values)
    raise KeyError(base)


def condition_holds(operator: str, key: str, policy_value: Any, request: Request) -> bool:
    """Evaluate one ``operator: {key: value(s)}`` entry against the request (module docstring)."""
    op = operator.lower()
    qualifier = None
    if ":" in op:
        qualifier, op = op.split(":", 1)             # "forallvalues", "foranyvalue"
    if_exists = op.endswith("ifexists")
    base = op[: -len("ifexists")] if if_exists else op
    if base not in _SUPPORTED:
        raise KeyError(operator)
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(policy_value)]
    present = request.value(key)
    if base == "null":
        # Null: "true" means the key must be absent, "false" that it must be present.
        want_absent = values[0].lower() == "true" if values else True
        return (present is None) == want_absent
    negated = base in _NEGATED
    if present is None or (qualifier and not present):
        if qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        if if_exists:
            return True
        return negated
    if qualifier == "forallvalues":
        return all(_value_matches(base, v, values) != negated for v in present)
    if negated:
        # Negated single-valued operator: true when no request value matches any policy value.
        return not any(_value_matches(base, v, values) for v in present)
    return any(_value_matches(base, v, values) for v in present)


def _statement_applies(statement: Mapping[str, Any], request: Request,
                       check_principal: bool, unsupported: list[str]) -> tuple[bool, str]:
    if check_principal:
        if "NotPrincipal" in statement:
            if principal_matches(statement["NotPrincipal"], request.principal):
                return False, "principal excluded by NotPrincipal"
        elif not principal_matches(statement.get("Principal"), request.principal):
            return False, "principal does not match"
    if "NotAction" in statement:
        if action_matches(_as_list(statement["NotAction"]), request.action):
            return False, f"{request.action} is in NotAction"
    elif not action_matches(_as_list(statement.get("Action")), request.action):
        return False, f"{request.action} not in Action"
    if "NotResource" in statement:
        if resource_matches(_as_list(statement["NotResource"]), request.resource):
            return False, f"{request.resource} is in NotResource"
    elif not resource_matches(_as_list(statement.get("Resource")), request.resource):
        return False, f"{request.resource} not in Resource"
    held: list[str] = []
    for operator, block in (statement.get("Condition") or {}).items():
        for key, value in block.items():
            if any("${" in str(v) for v in _as_list(value)):
                unsupported.append(f"policy variable in {operator} {key}")
            if request.is_unknown(key):
                unsupported.append(f"condition key {key} (its value for a request through an "
                                   "endpoint is not known to the agent)")
                return False, f"condition key {key} not known"
            try:
                ok = condition_holds(operator, key, value, request)
            except KeyError:
                unsupported.append(f"condition operator {operator}")
                return False, f"unsupported operator {operator}"
            if not ok:
                return False, f"condition {operator} {key} is false"
            held.append(f"{operator} {key}")
    return True, ("conditions hold: " + ", ".join(held)) if held else "no condition"


def evaluate(document: str | Mapping[str, Any], request: Request,
             check_principal: bool = True) -> Decision:
    """Evaluate one policy for one request: explicit Deny > Allow > implicit deny.

    ``check_principal`` is True for resource-based policies (bucket, endpoint), False for
    identity policies (which have no Principal element).
    """
    policy = load_policy(document)
    unsupported: list[str] = []
    allows: list[StatementResult] = []
    denies: list[StatementResult] = []
    for index, statement in enumerate(policy["Statement"]):
        sid = str(statement.get("Sid") or f"statement {index + 1}")
        effect = str(statement.get("Effect", ""))
        applies, why = _statement_applies(statement, request, check_principal, unsupported)
        result = StatementResult(sid, effect, applies, why)
        if applies and effect == "Deny":
            denies.append(result)
        elif applies and effect == "Allow":
            allows.append(result)
    if denies:
        return Decision(DENY, tuple(denies), tuple(dict.fromkeys(unsupported)))
    if allows:
        return Decision(ALLOW, tuple(allows), tuple(dict.fromkeys(unsupported)))
    return Decision(IMPLICIT_DENY, (), tuple(dict.fromkeys(unsupported)))


# --- the two questions ------------------------------------------------------------------------

def bucket_arns(bucket: str, key: str = "*") -> tuple[str, str]:
    """The bucket ARN and an object ARN."""
    return f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{key}"


def context_for(vpce_id: str | None, vpc_id: str | None,
                public_ip: str = "203.0.113.1", vpce_account: str | None = None,
                region: str | None = None) -> dict[str, str]:
    """The request context of a request through ``vpce_id`` (in ``vpc_id``, owned by
    ``vpce_account``), or a public one (module docstring: which keys a request carries)."""
    if vpce_id:
        context = {"aws:SourceVpce": vpce_id}
        if vpc_id:
            context["aws:SourceVpc"] = vpc_id
        if vpce_account:
            context[VPCE_ACCOUNT] = vpce_account
            if vpc_id and region:
                context[SOURCE_VPC_ARN] = f"arn:aws:ec2:{region}:{vpce_account}:vpc/{vpc_id}"
        return context
    return {"aws:SourceIp": public_ip}


def endpoint_request(action: str, resource: str, principal: str | None,
                     context: Mapping[str, str | Sequence[str]]) -> Request:
    """A :class:`Request` for ``context``; through an endpoint, the endpoint keys the context
    lacks (the organization keys, an unknown owner) are marked unknown, not absent."""
    through = any(k.lower() == SOURCE_VPCE for k in context)
    known = {k.lower() for k in context}
    unknown = tuple(k for k in ENDPOINT_CONTEXT_KEYS if k.lower() not in known) if through else ()
    return Request(action, resource, principal, context, unknown)


def condition_values(document: str | Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Every value any statement's Condition compares ``key`` with (case-insensitive key)."""
    values: list[str] = []
    for statement in load_policy(document)["Statement"]:
        for block in (statement.get("Condition") or {}).values():
            for name, value in block.items():
                if name.lower() == key.lower():
                    values.extend(str(v) for v in _as_list(value))
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class SourceEnforcement:
    """Whether a bucket policy ties access to VPC endpoints or VPCs, and which ones."""

    bucket: str
    enforced: bool                                # public requests are explicitly denied
    vpce_ids: tuple[str, ...]                     # ids the policy names under aws:SourceVpce
    vpc_ids: tuple[str, ...]                      # ids the policy names under aws:SourceVpc
    decisions: dict[str, str]                     # scenario -> effect, for the report
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"bucket": self.bucket, "enforced": self.enforced, "vpce_ids": list(self.vpce_ids),
                "vpc_ids": list(self.vpc_ids), "decisions": dict(self.decisions),
                "evidence": list(self.evidence)}


def source_enforcement(document: str | Mapping[str, Any] | None, bucket: str,
                       principal: str | None = None, action: str = "s3:GetObject",
                       endpoints: Iterable[tuple[str, str | None]] = (),
                       owners: Mapping[str, str] | None = None,
                       region: str | None = None) -> SourceEnforcement:
    """Does the bucket policy deny ``action`` from outside its endpoints/VPCs? For which ids?

    Decided by evaluating the policy for the same request arriving three ways: from the public
    internet (no aws:SourceVpce), through each endpoint the policy names, and through each of
    ``endpoints`` (this VPC's (vpce id, vpc id) pairs).
    """
    if not document:
        return SourceEnforcement(bucket, False, (), (), {}, (f"{bucket} has no bucket policy: "
                                                             "nothing ties it to an endpoint.",))
    vpces = condition_values(document, SOURCE_VPCE)
    vpcs = condition_values(document, SOURCE_VPC)
    resource = bucket_arns(bucket, "s3-route-agent/probe")[1] if action != "s3:ListBucket" \
        else bucket_arns(bucket)[0]
    scenarios: dict[str, dict[str, str]] = {"public": context_for(None, None)}
    for vpce in vpces:
        if "*" not in vpce and "?" not in vpce:
            scenarios[f"via {vpce}"] = context_for(vpce, None)
    for vpc in vpcs:
        if "*" not in vpc and "?" not in vpc:
            scenarios[f"via an endpoint in {vpc}"] = {"aws:SourceVpce": "vpce-00000000000000000",
                                                       "aws:SourceVpc": vpc}
    for vpce, vpc in endpoints:
        scenarios[f"via {vpce}" + (f" in {vpc}" if vpc else "")] = context_for(
            vpce, vpc, vpce_account=(owners or {}).get(vpce), region=region)
    decisions: dict[str, str] = {}
    evidence: list[str] = []
    for name, context in scenarios.items():
        decision = evaluate(document, endpoint_request(action, resource, principal, context))
        decisions[name] = decision.effect
        evidence.append(f"{action} on {bucket} {name}: {decision.effect.replace('_', ' ')} "
                        f"({decision.explain()}).")
        for item in decision.unsupported:
            evidence.append(f"Not evaluated: {item}.")
    enforced = decisions.get("public") == DENY and any(
        effect != DENY for name, effect in decisions.items() if name != "public")
    if enforced:
        ids = ", ".join(vpces + vpcs) or "none named"
        evidence.append(f"{bucket} denies {action} from outside its VPC endpoints ({ids}).")
    return SourceEnforcement(bucket, enforced, vpces, vpcs, decisions, tuple(evidence))


@dataclass(frozen=True)
class EndpointPolicyCheck:
    """Whether an endpoint policy lets the canary actions through to the canary bucket."""

    endpoint_id: str
    allowed: tuple[str, ...]
    denied: dict[str, str]                        # action -> why
    default_policy: bool

    @property
    def allows_all(self) -> bool:
        """True when every canary action is allowed."""
        return not self.denied

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"endpoint_id": self.endpoint_id, "allowed": list(self.allowed),
                "denied": dict(self.denied), "default_policy": self.default_policy,
                "allows_all": self.allows_all}


def endpoint_allows(document: str | Mapping[str, Any] | None, endpoint_id: str, bucket: str,
                    prefix: str = "s3-route-agent/canary/", principal: str | None = None,
                    vpc_id: str | None = None,
                    actions: Iterable[str] = CANARY_ACTIONS, vpce_account: str | None = None,
                    region: str | None = None) -> EndpointPolicyCheck:
    """Evaluate the endpoint policy for each canary action on the canary bucket.

    An endpoint without a policy document has the default policy, which allows full access
    (PrivateLink guide, "Control access to VPC endpoints using endpoint policies",
    https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html).
    """
    if not document:
        return EndpointPolicyCheck(endpoint_id, tuple(actions), {}, True)
    allowed: list[str] = []
    denied: dict[str, str] = {}
    bucket_arn, object_arn = bucket_arns(bucket, f"{prefix}probe")
    for action in actions:
        resource = bucket_arn if action == "s3:ListBucket" else object_arn
        context = dict(context_for(endpoint_id, vpc_id, vpce_account=vpce_account,
                                   region=region))
        if action == "s3:ListBucket":
            # The stale-canary sweep lists with Prefix=<canary prefix>, which S3 puts in the
            # request context as s3:prefix (S3 user guide, "Condition key examples": s3:prefix).
            context["s3:prefix"] = prefix
        decision = evaluate(document, endpoint_request(action, resource, principal, context))
        if decision.allowed and not decision.unsupported:
            allowed.append(action)
        elif decision.unsupported:
            # An Allow beside a statement the evaluator cannot judge is not a confirmed Allow.
            denied[action] = (f"not confirmed: {decision.explain()}; not evaluated: "
                              f"{'; '.join(decision.unsupported)}")
        else:
            denied[action] = decision.explain()
    return EndpointPolicyCheck(endpoint_id, tuple(allowed), denied, False)
