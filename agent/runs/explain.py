"""``s3-route-agent explain HOST``: a readable walk-through of one hostname's path, for a person.

It runs ``check`` (``s3_route_agent.runs.check.run_check``) with HOST as the only target, so the facts and
the verdict are exactly what ``check`` would report, and then tells the story in order: who this
host is, which route table its subnet uses and why that one, the VPC's S3 endpoints (with their
private DNS mode and, when a bucket is known, what their policy allows), the S3 prefix list, what
DNS answered, the winning route for each address and the rule that chose it, the verdict, and
what to change. With a bucket (from the name or ``--bucket``) ``check``'s bucket facts (the
collector on CheckDeps: GetBucketLocation, GetBucketPolicy) say the bucket's region and policy:
a bucket in another region bypasses the gateway endpoint, and a bucket policy keyed on
aws:SourceVpce / aws:SourceVpc decides which path S3 accepts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from s3_route_agent.runs.check import CheckDeps, CheckResult, run_check
from s3_route_agent.config import AgentConfig, TargetSpec
from s3_route_agent.engine.forms import (NOT_PRIVATE_DNS_FORMS, S3EXPRESS_FORMS, gateway_endpoints,
                                         gateway_service)
from s3_route_agent.engine.hostnames import HostForm, S3HostForm, parse_s3_host
from s3_route_agent.engine.model import (BucketFacts, Expect, Facts, Inventory, PathKind,
                                         RouteTargetKind, Status, TargetVerdict)
from s3_route_agent.engine.filters import describe_block_public_access
from s3_route_agent.engine.iam_policy import endpoint_allows, source_enforcement
from s3_route_agent.engine.observed import Flow, ObservedSection, normal_name
from s3_route_agent.engine.verdict import overall_status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Explanation:
    """The walk-through: sections of sentences, the fixes, the status (= exit code)."""

    host: str
    sections: tuple[tuple[str, tuple[str, ...]], ...]
    fixes: tuple[str, ...]
    status: Status
    verdict: TargetVerdict | None
    check: CheckResult

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"command": "explain", "host": self.host, "status": self.status.name,
                "exit_code": int(self.status),
                "path": self.verdict.path.value if self.verdict else None,
                "sections": [{"title": t, "lines": list(lines)} for t, lines in self.sections],
                "fixes": list(self.fixes), "check": self.check.report.document}


def explain_host(config: AgentConfig, deps: CheckDeps, host: str, expect: Expect | None = None,
                 bucket: str | None = None) -> Explanation:
    """Gather with ``check``, decide with the engine, and tell the story. Never raises for facts.

    Bucket facts come from ``check`` (``deps.bucket_facts``, wired by s3_route_agent.wiring); without
    that collector they are left out.
    """
    expect = expect or config.default_expect
    # A name as observed.names lists it, or as DNS writes it (any case, a trailing dot).
    host = normal_name(host)
    form = parse_s3_host(host)
    bucket = bucket or form.bucket
    result = run_check(replace(config, targets=(TargetSpec("explain", host, expect, bucket),)),
                       deps)
    verdict = result.verdicts[0] if result.verdicts else None
    facts = result.facts
    sections: list[tuple[str, tuple[str, ...]]] = []
    fixes: list[str] = []
    status = result.status

    # check already fed the bucket's region (GetBucketLocation) to the engine.
    bucket_info: BucketFacts | None = next(
        (b for b in result.bucket_facts if b.bucket == bucket), None) if bucket else None

    notes = _name_notes(host, form)
    if notes:
        sections.append(("Name", notes))
    sections.append(("Identity", _identity(facts, result)))
    if facts is not None and facts.inventory is not None:
        sections.append(("Route table", _route_table(facts)))
        sections.append(("S3 endpoints", _endpoints(facts, bucket, config)))
        sections.append(("S3 prefix list", _prefix_list(facts)))
        sections.append(("Security groups, network ACLs, Block Public Access",
                         _filters(facts)))
    elif facts is not None:
        sections.append(("EC2 facts", tuple(f"missing: {p}" for p in facts.problems)
                         or ("no inventory",)))
    if bucket_info is not None:
        sections.append((f"Bucket {bucket}", _bucket(bucket_info, facts)))
    if verdict is not None:
        sections.append(("DNS", _dns(verdict)))
        sections.append(("Routes per address", _addresses(verdict)))
        sections.append(("Verdict", _verdict(verdict)))
        fixes = _fixes(verdict, facts, form)
    observed = result.report.observed
    if observed is not None:
        related = _related_flows(observed, host, verdict)
        sections.append(("Seen on this host", _observed(observed, host, related)))
        # The walk-through is about this name: the host's other flows do not set its status.
        status = overall_status(result.verdicts, facts.problems if facts else ())
        if result.errors and status is Status.OK:
            status = Status.WARNING
        if any(f.status is Status.CRITICAL for f in related):
            status = Status.worst([status, Status.CRITICAL])
    if result.errors:
        sections.append(("Errors", tuple(result.errors)))
    return Explanation(host, tuple(sections), tuple(fixes), status, verdict, result)


def _name_notes(host: str, form: S3HostForm) -> tuple[str, ...]:
    """What is unusual about the name asked for: an IP address, or a name that is not S3's."""
    from s3_route_agent.collectors.dns_lookup import address_literal
    if address_literal(host) is not None:
        return (f"{host} is an IP address, not a name: it is judged as that address, with no "
                "DNS query. An S3 interface-endpoint ENI address is `interface`; another address "
                "takes the path its route gives (a public S3 address is named by the S3 ranges).",)
    if not form.is_s3:
        return (f"{host} is not an S3 hostname (no S3 name form matches, see engine/"
                "hostnames.py): its addresses are judged like any destination's, and S3's "
                "endpoints carry it only if they are S3's. S3 names look like "
                "s3.REGION.amazonaws.com or BUCKET.s3.REGION.amazonaws.com.",)
    return ()


def _related_flows(observed: ObservedSection, host: str,
                   verdict: TargetVerdict | None) -> list[Flow]:
    """The host's live flows to this name: named after it, or to an address it resolved to."""
    entry = observed.name(host)
    addresses = set(entry.addresses if entry else ())
    addresses.update(a.ip for a in (verdict.addresses if verdict else ()))
    return [f for f in observed.flows if f.hostname == host or f.remote_ip in addresses]


def _observed(observed: ObservedSection, host: str, related: list[Flow]) -> tuple[str, ...]:
    """What the host's own traffic says about this name (observed.names, live flows)."""
    from s3_route_agent.runs.observe import iso_seconds
    entry = observed.name(host)
    lines: list[str] = []
    if entry is None:
        lines.append(f"{host} is not among the {len(observed.names)} name(s) this host's software "
                     "was seen resolving or using (observed.names).")
    else:
        how = [w for w, yes in (("resolving it (DNS responses on the host)", entry.resolved),
                                ("connecting to its addresses", entry.used)) if yes] or             ["using it in an earlier run"]
        lines.append(f"This host's software was seen {' and '.join(how)}: first "
                     f"{iso_seconds(entry.first_seen)}, last {iso_seconds(entry.last_seen)}"
                     + (f"; addresses {', '.join(entry.addresses)}" if entry.addresses else "")
                     + ".")
    for flow in related:
        lines.append(f"{flow.describe()} ({flow.state}, {flow.bytes} bytes"
                     + (", the agent's own" if flow.own else f", {flow.status.name}") + ").")
    if not related:
        lines.append("No live connection of this host goes to it right now (connections opened "
                     "and closed between two looks are not seen).")
    return tuple(lines)


def _identity(facts: Facts | None, result: CheckResult) -> tuple[str, ...]:
    if facts is None or facts.identity is None:
        return tuple(f"unknown: {e}" for e in result.errors) or ("unknown",)
    ident = facts.identity
    lines = [f"Instance {ident.instance_id or '-'} in {ident.region}"
             + (f" ({ident.availability_zone})" if ident.availability_zone else "")
             + f", VPC {ident.vpc_id}, subnet {ident.subnet_id}.",
             f"Identity from {ident.source}"
             + (f"; interface {ident.interface_id}" if ident.interface_id else "")
             + (f", addresses {', '.join(ident.local_ipv4s + ident.ipv6s)}"
                if ident.local_ipv4s or ident.ipv6s else "") + "."]
    source = result.report.facts
    lines.append(f"EC2 inventory from {source.inventory_source} "
                 f"({source.ec2_calls} EC2 call(s) this run).")
    return tuple(lines)


def _route_table(facts: Facts) -> tuple[str, ...]:
    inventory = facts.inventory
    table = inventory.route_table if inventory else None
    if table is None:
        return (f"No route table found for {inventory.subnet_id if inventory else 'the subnet'}.",)
    # A subnet without an explicit association uses the VPC's main route table (VPC user guide,
    # "Subnet route tables", https://docs.aws.amazon.com/vpc/latest/userguide/subnet-route-tables.html).
    why = (f"{table.id} is explicitly associated with {inventory.subnet_id}."
           if table.association == "explicit" else
           f"{inventory.subnet_id} has no explicit association, so it uses the VPC's main route "
           f"table {table.id}.")
    lines = [why]
    for route in table.routes:
        lines.append(f"{route.destination:<20} -> {route.target_id} ({route.target_kind.value}"
                     f"{', ' + route.origin.value if route.origin.value != 'static' else ''}"
                     f"{', BLACKHOLE' if route.state == 'blackhole' else ''})")
    return tuple(lines)


def _endpoints(facts: Facts, bucket: str | None, config: AgentConfig) -> tuple[str, ...]:
    inventory = facts.inventory
    if not inventory.endpoints:
        return (f"{inventory.vpc_id} has no S3 endpoint.",)
    lines = []
    table_id = inventory.route_table.id if inventory.route_table else None
    canary = bucket or config.transfer.bucket or (config.buckets[0] if config.buckets else None)
    for endpoint in inventory.endpoints:
        line = (f"{endpoint.id}: {endpoint.type} {endpoint.service_name}, {endpoint.state}")
        served = endpoint.service_region_served
        if served and served != inventory.region:
            line += f", cross-Region (service region {served})"
        if endpoint.kind == "gateway":
            attached = table_id in endpoint.route_table_ids
            line += (f", route tables {', '.join(endpoint.route_table_ids) or 'none'}"
                     f" ({'includes' if attached else 'does not include'} {table_id})")
            line += f", IP address type {endpoint.ip_address_type or 'ipv4'}"
        else:
            if not endpoint.private_dns_enabled:
                mode = "private DNS off"
            elif endpoint.private_dns_only_for_inbound_resolver_endpoint:
                mode = "private DNS only for inbound resolver endpoints"
            else:
                mode = "private DNS for all resolvers"
            line += (f", {mode}, IP address type {endpoint.ip_address_type or 'ipv4'}, DNS "
                     f"records {endpoint.dns_record_ip_type or 'ipv4'}, ENIs "
                     f"{', '.join(endpoint.network_interface_ids) or 'none'}")
            addresses = [a for i in inventory.interfaces if i.endpoint_id == endpoint.id
                         for a in i.addresses]
            if addresses:
                line += f" ({', '.join(addresses)})"
        lines.append(line + ".")
        if canary:
            check = endpoint_allows(endpoint.policy_document, endpoint.id, canary,
                                    config.transfer.prefix, vpc_id=inventory.vpc_id)
            if check.default_policy:
                lines.append("  policy: default (full access).")
            elif check.allows_all:
                lines.append(f"  policy allows the canary actions on {canary}.")
            else:
                for action, why in check.denied.items():
                    lines.append(f"  policy does not allow {action} on {canary}: {why}.")
    return tuple(lines)


def _prefix_list(facts: Facts) -> tuple[str, ...]:
    inventory = facts.inventory
    plist = inventory.prefix_list(inventory.s3_prefix_list_id) if inventory.s3_prefix_list_id\
        else None
    if plist is None:
        return (f"No S3 prefix list known for {inventory.region}.",)
    return (f"{plist.id} ({plist.name}, version {plist.version}): {', '.join(plist.cidrs)}.",)


def _filters(facts: Facts) -> tuple[str, ...]:
    """What can drop traffic the routes let through (engine/filters.py judges it)."""
    inventory = facts.inventory
    filters = inventory.traffic_filters
    if filters is None:
        return ("Not collected (an inventory cached before they were): the next refresh "
                "collects them.",)
    lines = [f"not known: {facet.replace('_', ' ')}: {why}" for facet, why in filters.problems]
    groups = filters.host_security_group_ids or ()
    if groups:
        lines.append(f"This host's security groups: {', '.join(groups)}.")
        for rule in filters.rules_of(groups, egress=True):
            lines.append(f"  egress {rule.describe()} [{rule.group_id}]")
        if not filters.rules_of(groups, egress=True) and set(groups) <= set(
                filters.described_groups):
            lines.append("  no egress rule at all: nothing may leave this host.")
    for eni in inventory.interfaces:
        if eni.endpoint_id and eni.security_group_ids:
            lines.append(f"{eni.endpoint_id} ENI {eni.id} security groups: "
                         f"{', '.join(eni.security_group_ids)}.")
            for rule in filters.rules_of(eni.security_group_ids, egress=False):
                lines.append(f"  ingress {rule.describe()} [{rule.group_id}]")
    for acl in filters.network_acls:
        subnets = ", ".join(acl.subnet_ids)
        lines.append(f"Network ACL {acl.id} ({'default' if acl.is_default else 'custom'}) of "
                     f"{subnets}:")
        for entry in sorted(acl.entries, key=lambda e: (not e.egress, e.rule_number)):
            ports = ("all" if entry.protocol == "-1" or entry.port_from is None
                     else f"{entry.port_from}-{entry.port_to}")
            lines.append(f"  {'outbound' if entry.egress else 'inbound'} rule "
                         f"{entry.rule_label}: {entry.action} protocol {entry.protocol} ports "
                         f"{ports} {'to' if entry.egress else 'from'} {entry.cidr}")
    lines.append(describe_block_public_access(filters.block_public_access))
    if facts.ephemeral_ports:
        lines.append(f"This host's ephemeral ports (ip_local_port_range): "
                     f"{facts.ephemeral_ports[0]}-{facts.ephemeral_ports[1]}; replies to them "
                     "must pass every network ACL on the way back.")
    else:
        lines.append("This host's ephemeral port range is unknown: replies are judged against "
                     "AWS's guidance 1024-65535.")
    return tuple(lines)


def _bucket(info: BucketFacts, facts: Facts | None) -> tuple[str, ...]:
    lines = []
    if info.region:
        lines.append(f"Region {info.region} (GetBucketLocation).")
    endpoints = []
    if facts is not None and facts.inventory is not None:
        endpoints = [(e.id, facts.inventory.vpc_id) for e in facts.inventory.endpoints]
    if info.policy is None and any("GetBucketPolicy" in p for p in info.problems):
        # An unreadable policy is not an absent one: say so rather than "no bucket policy".
        lines.append(f"The bucket policy of {info.bucket} could not be read; whether it ties "
                     "access to an endpoint is unknown.")
    else:
        enforcement = source_enforcement(info.policy, info.bucket, endpoints=endpoints)
        lines.extend(enforcement.evidence)
    lines.extend(info.problems)
    return tuple(lines)


def _dns(verdict: TargetVerdict) -> tuple[str, ...]:
    dns = verdict.dns
    if dns is None:
        return ("not resolved",)
    if dns.failure is not None:
        return (f"{dns.failure.kind}: {dns.failure.message}",)
    lines = [f"{a.ip} ({a.family}, TTL {a.ttl})" for a in dns.addresses]
    if dns.cname_chain:
        lines.append("CNAME chain: " + " -> ".join((verdict.target.host,) + dns.cname_chain))
    if dns.nameserver:
        lines.append(f"answered by {dns.nameserver} in {dns.latency_ms:.1f} ms")
    return tuple(lines)


def _addresses(verdict: TargetVerdict) -> tuple[str, ...]:
    lines = []
    for address in verdict.addresses:
        route = address.route
        head = f"{address.ip}: {address.path.value}"
        if route is not None:
            head += f" via {route.route.destination} -> {route.route.target_id}"
        lines.append(head)
        lines.extend(f"  {sentence}" for sentence in address.evidence)
    return tuple(lines)


def _verdict(verdict: TargetVerdict) -> tuple[str, ...]:
    lines = [f"{verdict.status.name}: {verdict.target.host} takes the {verdict.path.value} path "
             f"(expected {verdict.target.expect.value}): {verdict.reason}."]
    lines.extend(verdict.evidence)
    return tuple(lines)


def _fixes(verdict: TargetVerdict, facts: Facts | None, form: Any) -> list[str]:
    """What to change, from the verdict's facts. Empty when the path is as expected."""
    if verdict.status is Status.OK:
        return []
    fixes: list[str] = []
    inventory = facts.inventory if facts else None
    region = facts.region if facts else None
    table = inventory.route_table if inventory else None
    if form.form is HostForm.GLOBAL and region:
        fixes.append(f"use s3.{region}.amazonaws.com (or {form.bucket or 'BUCKET'}.s3.{region}."
                     "amazonaws.com) instead of the legacy global name; in boto3: "
                     "Config(signature_version='s3v4', s3={'addressing_style': 'virtual'}) with "
                     f"region_name='{region}' (us-east-1 also needs "
                     "s3={'us_east_1_regional_endpoint': 'regional'}).")
    if form.form is HostForm.DASH_REGION and form.region:
        fixes.append(f"use s3.{form.region}.amazonaws.com instead of the dash-region name.")
    if form.form is HostForm.ACCELERATE:
        fixes.append("set s3={'use_accelerate_endpoint': False}: acceleration is never private.")
    if form.form is HostForm.MRAP:
        fixes.append("create an interface endpoint for com.amazonaws.s3-global.accesspoint with "
                     "private DNS.")
    fixes.extend(_form_fixes(form, region))
    if inventory is not None and table is not None and region:
        gateways = inventory.s3_endpoints(region, "gateway")
        in_region = any(a.s3_region in (region, None) for a in verdict.addresses)
        public = any(PathKind.PUBLIC in (a.path, a.would_take) for a in verdict.addresses)
        has_route = any(r.target_kind is RouteTargetKind.GATEWAY_ENDPOINT for r in table.routes)
        if public and form.form in S3EXPRESS_FORMS and form.region in (None, region):
            fixes.extend(_s3express_gateway_fixes(form, inventory, region, table.id))
        elif public and in_region and gateway_service(form, region) is not None:
            if not gateways:
                fixes.append(f"create a gateway endpoint for com.amazonaws.{region}.s3 in "
                             f"{inventory.vpc_id} and associate {table.id}.")
            for gateway in gateways:
                if table.id not in gateway.route_table_ids or not has_route:
                    fixes.append(f"add {table.id} to {gateway.id} (aws ec2 modify-vpc-endpoint "
                                 f"--vpc-endpoint-id {gateway.id} --add-route-table-ids "
                                 f"{table.id}).")
        for address in verdict.addresses:
            if address.route and address.route.route.state == "blackhole":
                fixes.append(f"replace the blackhole route {address.route.route.destination} -> "
                             f"{address.route.route.target_id} in {table.id}.")
        interfaces = inventory.s3_endpoints(region, "interface")
        if (verdict.target.expect is Expect.INTERFACE and verdict.path is not PathKind.INTERFACE
                and form.fips):
            # PrivateLink for S3 has no FIPS endpoints and private DNS never answers FIPS names
            # (S3 user guide, "AWS PrivateLink for Amazon S3: Restrictions and limitations").
            fixes.append(f"{verdict.target.host} is a FIPS name: no interface endpoint serves "
                         "FIPS names; use the non-FIPS name (which private DNS can answer) or the "
                         "endpoint-specific name bucket.vpce-….s3."
                         f"{region}.vpce.amazonaws.com as endpoint_url.")
        elif (verdict.target.expect is Expect.INTERFACE and verdict.path is not PathKind.INTERFACE
              and form.form not in NOT_PRIVATE_DNS_FORMS):
            # Private DNS of an S3 interface endpoint never answers these names (S3 Express,
            # Object Lambda, Outposts, global, dash-region, website): enabling it fixes nothing.
            for endpoint in interfaces:
                if not endpoint.private_dns_enabled:
                    fixes.append(f"enable private DNS on {endpoint.id}, or use its "
                                 "endpoint-specific name (bucket.vpce-….s3."
                                 f"{region}.vpce.amazonaws.com) as endpoint_url.")
    for address in verdict.addresses:
        for blocker in address.blocked_by:
            fixes.append(f"{address.ip} is blocked by {blocker.summary()}: {blocker.fix}.")
    filters = inventory.traffic_filters if inventory else None
    if filters is not None and any(a.path is PathKind.UNKNOWN and a.would_take
                                   for a in verdict.addresses):
        for facet, why in filters.problems:
            fixes.append(f"let the agent see the {facet.replace('_', ' ')}: {why}.")
    other = facts.bucket_region(verdict.target.bucket or form.bucket) if facts else None
    far = sorted({a.s3_region for a in verdict.addresses
                  if a.s3_region and region and a.s3_region not in (region, "GLOBAL")})
    cross = ([other] if other and region and other != region and
             verdict.path is not PathKind.INTERFACE else []) + [
        r for r in far if form.form is not HostForm.GLOBAL]
    if form.form in S3EXPRESS_FORMS or form.form in (HostForm.OBJECT_LAMBDA, HostForm.OUTPOSTS,
                                                     HostForm.ACCELERATE, HostForm.MRAP):
        cross = []      # the com.amazonaws.REGION.s3 service does not carry these names
    for far_region in dict.fromkeys(cross):
        # Cross-Region PrivateLink (PrivateLink guide, "Cross-region enabled AWS services",
        # https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-cross-region-privatelink-support.html):
        # an interface endpoint in this region can serve S3 of another.
        vpc = inventory.vpc_id if inventory else "VPC"
        fixes.append(f"S3 of {far_region} is outside this VPC's {region} endpoints: create a "
                     f"cross-Region interface endpoint (aws ec2 create-vpc-endpoint --vpc-id "
                     f"{vpc} --vpc-endpoint-type Interface --service-name "
                     f"com.amazonaws.{far_region}.s3 --service-region {far_region} --subnet-ids "
                     "…) and use its endpoint-specific name, or use a bucket in "
                     f"{region}.")
    if not fixes and verdict.path is PathKind.UNRESOLVED:
        fixes.append(f"make {verdict.target.host} resolvable from this host (check the resolver).")
    return list(dict.fromkeys(fixes))


def _form_fixes(form: S3HostForm, region: str | None) -> list[str]:
    """Fixes for names no gateway endpoint carries (rules and sources: engine/forms.py)."""
    if form.form is HostForm.OBJECT_LAMBDA:
        return [f"{form.host} is an Object Lambda Access Point: Object Lambda does not support "
                "gateway endpoints and its ranges are not in the S3 prefix list, so no endpoint "
                "or route change makes it private; expect public for it, or read through its "
                "supporting standard access point (NAME-ACCOUNT.s3-accesspoint."
                f"{form.region or region or 'REGION'}.amazonaws.com), which the S3 gateway "
                "endpoint carries (without the Lambda transformation)."]
    if form.form is HostForm.OUTPOSTS and form.bucket:
        return [f"{form.host} is an S3 on Outposts access point: its data never takes a gateway "
                "endpoint or PrivateLink; it goes to an S3 on Outposts endpoint in this VPC "
                "(aws s3outposts create-endpoint for the Outpost and subnet), so expect any for "
                "this name rather than gateway or interface."]
    if form.form is HostForm.OUTPOSTS:
        return [f"reach {form.host} (bucket and endpoint management APIs) privately through an "
                "S3 on Outposts interface endpoint (AWS PrivateLink for S3 on Outposts) with "
                "private DNS; gateway endpoints do not carry it."]
    return []


def _s3express_gateway_fixes(form: S3HostForm, inventory: Inventory, region: str,
                             table_id: str) -> list[str]:
    """An S3 Express name on the public path: its own gateway endpoint service, never ...s3."""
    service = gateway_service(form, region)
    gateways = gateway_endpoints(form, inventory, region)
    if not gateways:
        return [f"create a gateway endpoint for {service} (S3 Express One Zone, its own prefix "
                f"list; the S3 gateway endpoint com.amazonaws.{region}.s3 does not carry it) in "
                f"{inventory.vpc_id} and associate {table_id}."]
    table = inventory.route_table
    fixes = []
    for gateway in gateways:
        routed = table is not None and any(r.target_id == gateway.id for r in table.routes)
        if table_id not in gateway.route_table_ids or not routed:
            fixes.append(f"add {table_id} to {gateway.id}, the {service} gateway endpoint (aws "
                         f"ec2 modify-vpc-endpoint --vpc-endpoint-id {gateway.id} "
                         f"--add-route-table-ids {table_id}).")
    return fixes


def render_explanation(explanation: Explanation, width: int | None = None) -> str:
    """The walk-through as text; with ``width``, lines wrapped to fit it (a name or command
    longer than a line is kept whole, to be copied)."""
    lines = [f"explain {explanation.host}: {explanation.status.name}"]
    for index, (title, body) in enumerate(explanation.sections, start=1):
        lines.append("")
        lines.append(f"{index}. {title}")
        lines.extend(f"   {line}" for line in body)
    lines.append("")
    if explanation.fixes:
        lines.append("What to change:")
        lines.extend(f"   - {fix}" for fix in explanation.fixes)
    else:
        lines.append("Nothing to change: the path is as expected.")
    if width is not None:
        from s3_route_agent.report.text import fit_lines
        lines = fit_lines(lines, width, break_long_words=False)
    return "\n".join(lines)
