"""The verdict engine: facts in, path and status out. Pure: no boto3, dns, scapy or socket.

Which route an address takes is :mod:`s3_route_agent.engine.routes` (the VPC's route priority);
this module turns the winning route, the endpoint ENIs, the S3 ranges and the hostname's form
into a path, a status and the sentences that explain them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from typing import Iterable

from s3_route_agent.engine.filters import (AWS_EPHEMERAL_PORTS, HTTPS_PORT, Connection,
                                           connection_filters)
from s3_route_agent.engine.forms import (S3EXPRESS_FORMS, form_ruling, gateway_endpoints,
                                         gateway_service)
from s3_route_agent.engine.hostnames import HostForm, S3HostForm, parse_s3_host
from s3_route_agent.engine.model import (AddressVerdict, DnsAnswer, Facts, Inventory,
                                         NetworkInterface, PathKind, RouteTargetKind, Status,
                                         Target, TargetVerdict)
from s3_route_agent.engine.routes import S3RangeIndex, address_family, s3_range_index

logger = logging.getLogger(__name__)

_PUBLIC_KINDS = (RouteTargetKind.INTERNET_GATEWAY, RouteTargetKind.EGRESS_ONLY_INTERNET_GATEWAY,
                 RouteTargetKind.NAT_GATEWAY)
_TRANSIT_KINDS = (RouteTargetKind.TRANSIT_GATEWAY, RouteTargetKind.VIRTUAL_PRIVATE_GATEWAY,
                  RouteTargetKind.PEERING_CONNECTION, RouteTargetKind.NETWORK_INTERFACE,
                  RouteTargetKind.INSTANCE, RouteTargetKind.GATEWAY_LOAD_BALANCER_ENDPOINT,
                  RouteTargetKind.LOCAL_GATEWAY, RouteTargetKind.CARRIER_GATEWAY,
                  RouteTargetKind.CORE_NETWORK)


def _interface_for(ip: str, interfaces: Iterable[NetworkInterface]) -> NetworkInterface | None:
    addr = ipaddress.ip_address(ip)
    for eni in interfaces:
        for held in eni.addresses:
            try:
                if ipaddress.ip_address(held) == addr:
                    return eni
            except ValueError:
                continue
    return None


# The paths on which traffic leaves this host, so that its filters can drop it.
_FILTERED_PATHS = (PathKind.GATEWAY, PathKind.INTERFACE, PathKind.PUBLIC, PathKind.TRANSIT)


def path_for_address(ip: str, facts: Facts, ranges: S3RangeIndex,
                     form: S3HostForm | None = None, port: int = HTTPS_PORT,
                     local_port: int | None = None) -> AddressVerdict:
    """Decide the path traffic to one address takes, with evidence sentences.

    ``form`` is the parsed name the address was resolved from, when known: it decides which
    gateway endpoint could have carried a public address (S3's, S3 Express's, or none).
    First the route (:func:`routed_path`), then what can drop the traffic the route lets
    through (security groups, network ACLs, VPC Block Public Access:
    :mod:`s3_route_agent.engine.filters`): a drop makes the path ``blocked`` with ``would_take``
    (the routed path) and ``blocked_by``; a filter that cannot be judged makes it ``unknown``.
    ``port`` is the destination port; ``local_port`` the source port of one observed connection
    (otherwise the replies are judged for this host's whole ephemeral range).
    """
    routed = routed_path(ip, facts, ranges, form)
    inventory = facts.inventory
    if routed.path not in _FILTERED_PATHS or inventory is None:
        return routed
    eni = _interface_for(ip, inventory.interfaces)
    endpoint = inventory.endpoint(eni.endpoint_id) if eni and eni.endpoint_id else None
    if local_port is not None:
        ports, known = (int(local_port), int(local_port)), True
    elif facts.ephemeral_ports is not None:
        ports, known = facts.ephemeral_ports, True
    else:
        ports, known = AWS_EPHEMERAL_PORTS, False
    outcome = connection_filters(Connection(
        destination=ip, family=routed.family, port=port, local_ports=ports,
        local_ports_known=known, path=routed.path, route=routed.route,
        eni=eni if routed.path is not PathKind.PUBLIC else None, endpoint=endpoint), facts)
    if outcome is None:
        return routed
    if outcome.blocked:
        # What drops it is in blocked_by (kind, id, rule, fix); the evidence says what passed.
        return dataclasses.replace(routed, path=PathKind.BLOCKED, would_take=routed.path,
                                   blocked_by=outcome.blocked_by,
                                   evidence=routed.evidence + outcome.evidence)
    if outcome.unknown:
        return dataclasses.replace(routed, path=PathKind.UNKNOWN, would_take=routed.path,
                                   evidence=routed.evidence + outcome.evidence + outcome.unknown)
    return dataclasses.replace(routed, evidence=routed.evidence + outcome.evidence)


def routed_path(ip: str, facts: Facts, ranges: S3RangeIndex,
                form: S3HostForm | None = None) -> AddressVerdict:
    """The path the route table gives traffic to ``ip`` (filters not applied)."""
    family = address_family(ip)
    s3_region = ranges.region_for(ip)
    inventory = facts.inventory
    region = facts.region
    evidence: list[str] = []
    if s3_region:
        evidence.append(f"{ip} is in S3's address ranges for {s3_region}.")
    if inventory is None:
        missing = "; ".join(facts.problems) or "EC2 inventory unavailable"
        evidence.append(f"Cannot route {ip}: {missing}.")
        return AddressVerdict(ip, family, PathKind.UNKNOWN, s3_region=s3_region,
                              evidence=tuple(evidence))
    table = inventory.route_table
    if table is None:
        evidence.append(f"No route table is known for subnet {inventory.subnet_id}.")
        return AddressVerdict(ip, family, PathKind.UNKNOWN, s3_region=s3_region,
                              evidence=tuple(evidence))
    match, unknown_lists = inventory.route_index.match(ip)  # parsed once per inventory
    eni = _interface_for(ip, inventory.interfaces)
    why_table = ("explicitly associated with" if table.association == "explicit"
                 else "the VPC's main table, used by")
    common = dict(ip=ip, family=family, route=match, s3_region=s3_region)

    if unknown_lists:
        evidence.append(f"Entries of prefix list(s) {', '.join(unknown_lists)} in {table.id} are "
                        "unknown; a route to them could also match.")
    if match is None:
        evidence.append(f"No route in {table.id} ({why_table} {inventory.subnet_id}) matches {ip}.")
        path = PathKind.UNKNOWN if unknown_lists else PathKind.NO_ROUTE
        return AddressVerdict(evidence=tuple(evidence), path=path, **common)
    route = match.route
    evidence.append(f"Route {table.id} ({why_table} {inventory.subnet_id}): {match.rule}.")
    if route.state == "blackhole":
        evidence.append(f"The winning route to {route.target_id} is a blackhole: traffic is dropped.")
        return AddressVerdict(evidence=tuple(evidence), path=PathKind.NO_ROUTE, **common)

    if eni is not None and eni.endpoint_id:
        in_vpc = eni.vpc_id == inventory.vpc_id
        endpoint = inventory.endpoint(eni.endpoint_id)
        if endpoint is None and (in_vpc or eni.endpoint_id in inventory.non_s3_endpoint_ids):
            # The inventory holds every S3 endpoint of this VPC, and the S3 ones of other VPCs
            # an address led to: an ENI of another endpoint (EC2, STS, a Resource or
            # ServiceNetwork endpoint) does not serve S3.
            evidence.append(f"{ip} belongs to {eni.endpoint_id}, an endpoint that is not an S3 "
                            "endpoint (another service, or a Resource/ServiceNetwork endpoint): "
                            "S3 requests sent there fail.")
            return AddressVerdict(evidence=tuple(evidence), path=PathKind.UNKNOWN,
                                  endpoint_id=eni.endpoint_id, endpoint_in_vpc=in_vpc, **common)
        if endpoint is None:
            evidence.append(f"{ip} belongs to endpoint {eni.endpoint_id} in {eni.vpc_id}, which "
                            "could not be described: whether it serves S3 is unknown.")
            return AddressVerdict(evidence=tuple(evidence), path=PathKind.UNKNOWN,
                                  endpoint_id=eni.endpoint_id, endpoint_in_vpc=False, **common)
        if not endpoint.is_available:
            evidence.append(f"{ip} belongs to interface endpoint {endpoint.id}, whose state is "
                            f"{endpoint.state}: it carries no traffic.")
            return AddressVerdict(evidence=tuple(evidence), path=PathKind.NO_ROUTE,
                                  endpoint_id=eni.endpoint_id, endpoint_in_vpc=in_vpc, **common)
        where = "in this VPC" if in_vpc else f"in {eni.vpc_id}, reached via {route.target_id}"
        evidence.append(f"{ip} is a private address of {eni.id}, the ENI of interface endpoint "
                        f"{eni.endpoint_id} ({where}): PrivateLink.")
        served = endpoint.service_region_served
        if served and region and served != region:
            # Cross-Region PrivateLink: an interface endpoint in this region serving S3 of
            # another (PrivateLink guide, "Cross-region enabled AWS services",
            # https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-cross-region-privatelink-support.html).
            evidence.append(f"{endpoint.id} is a cross-Region interface endpoint: it carries S3 "
                            f"of {served} (service region {served}) from this {region} VPC.")
        if family == "ipv6":
            evidence.append(f"{endpoint.id} has IP address type "
                            f"{endpoint.ip_address_type or 'ipv4'} and its ENI holds {ip}: it "
                            "carries this IPv6 traffic.")
        return AddressVerdict(evidence=tuple(evidence), path=PathKind.INTERFACE,
                              endpoint_id=eni.endpoint_id, endpoint_in_vpc=in_vpc, **common)

    kind = route.target_kind
    if kind is RouteTargetKind.GATEWAY_ENDPOINT:
        endpoint = inventory.endpoint(route.target_id)
        if endpoint is None:
            evidence.append(f"{route.target_id} is not an S3 endpoint of {inventory.vpc_id}.")
            return AddressVerdict(evidence=tuple(evidence), path=PathKind.UNKNOWN, **common)
        if not endpoint.is_available:
            evidence.append(f"Gateway endpoint {endpoint.id} is {endpoint.state}: no traffic.")
            return AddressVerdict(evidence=tuple(evidence), path=PathKind.NO_ROUTE,
                                  endpoint_id=endpoint.id, endpoint_in_vpc=True, **common)
        # A gateway endpoint carries IPv6 only when its IpAddressType says so (VPC user guide,
        # "Gateway endpoints": IP address types).
        if family == "ipv6" and not endpoint.carries_ipv6:
            evidence.append(f"Gateway endpoint {endpoint.id} has IP address type "
                            f"{endpoint.ip_address_type or 'ipv4'}: it does not carry IPv6.")
            return AddressVerdict(evidence=tuple(evidence), path=PathKind.NO_ROUTE,
                                  endpoint_id=endpoint.id, endpoint_in_vpc=True, **common)
        evidence.append(f"{ip} is in prefix list {route.destination}, routed to gateway endpoint "
                        f"{endpoint.id}.")
        return AddressVerdict(evidence=tuple(evidence), path=PathKind.GATEWAY,
                              endpoint_id=endpoint.id, endpoint_in_vpc=True, **common)

    if kind in _PUBLIC_KINDS:
        label = {RouteTargetKind.NAT_GATEWAY: "NAT gateway",
                 RouteTargetKind.INTERNET_GATEWAY: "internet gateway",
                 RouteTargetKind.EGRESS_ONLY_INTERNET_GATEWAY: "egress-only internet gateway"}[kind]
        evidence.append(f"Traffic to {ip} leaves through {label} {route.target_id}: public path.")
        evidence.extend(_public_explanation(ip, s3_region, region, inventory, table.id, form))
        return AddressVerdict(evidence=tuple(evidence), path=PathKind.PUBLIC, **common)

    if kind is RouteTargetKind.LOCAL:
        if eni is not None:
            evidence.append(f"{ip} is inside the VPC on {eni.id}, which is not an interface "
                            "endpoint: traffic goes to that interface.")
            return AddressVerdict(evidence=tuple(evidence), path=PathKind.TRANSIT, **common)
        evidence.append(f"{ip} is inside the VPC (local route) but no known network interface "
                        "holds it.")
        return AddressVerdict(evidence=tuple(evidence), path=PathKind.UNKNOWN, **common)

    if kind in _TRANSIT_KINDS:
        evidence.append(f"Traffic to {ip} goes to {route.target_id} ({kind.value.replace('_', ' ')}),"
                        " beyond what the agent can see.")
        return AddressVerdict(evidence=tuple(evidence), path=PathKind.TRANSIT, **common)
    evidence.append(f"Route target {route.target_id} is of a kind the agent does not know.")
    return AddressVerdict(evidence=tuple(evidence), path=PathKind.UNKNOWN, **common)


def _public_explanation(ip: str, s3_region: str | None, region: str | None,
                        inventory: Inventory, table_id: str,
                        form: S3HostForm | None = None) -> list[str]:
    """Why an S3 address took the public path: the most common silent bypasses."""
    notes: list[str] = []
    if s3_region and region and s3_region not in (region, "GLOBAL"):
        # A gateway endpoint covers only its own region's S3 (VPC user guide, "Gateway endpoints
        # for Amazon S3": "cannot be used to access S3 in other Regions").
        notes.append(f"{ip} is S3 in {s3_region}, not {region}: this VPC's gateway endpoint only "
                     f"carries S3 traffic of {region}, so traffic follows the default route.")
        return notes
    service = gateway_service(form, inventory.region) if form is not None else None
    if form is not None and service is None:
        # Object Lambda, Outposts, MRAP and acceleration names: no gateway endpoint carries them,
        # so a missing endpoint route explains nothing (forms.py cites each rule).
        return notes
    if form is not None and form.form in S3EXPRESS_FORMS:
        return notes + _s3express_explanation(form, region, inventory, table_id, service)
    gateways = inventory.s3_endpoints(inventory.region, "gateway")
    if s3_region == region and gateways:
        attached = [e for e in gateways if table_id in e.route_table_ids]
        if attached:
            notes.append(f"Gateway endpoint {attached[0].id} lists {table_id}, but the table has no "
                         f"route to its prefix list: the endpoint route was removed; re-associate "
                         f"{table_id} with {attached[0].id}.")
        else:
            ids = ", ".join(e.id for e in gateways)
            notes.append(f"Gateway endpoint {ids} exists but is not associated with {table_id}: "
                         f"add {table_id} to it.")
    elif s3_region == region and not gateways:
        notes.append(f"{inventory.vpc_id} has no S3 gateway endpoint for {region}.")
    return notes


def _s3express_explanation(form: S3HostForm, region: str | None, inventory: Inventory,
                           table_id: str, service: str | None) -> list[str]:
    """A public S3 Express name: what its own gateway endpoint service (com.amazonaws.R.s3express,
    its own prefix list) lacks. The name says it is S3 Express of its region, whether or not
    ip-ranges.json lists the address under S3."""
    if form.region not in (None, region):
        return []
    gateways = gateway_endpoints(form, inventory, inventory.region)
    attached = [e for e in gateways if table_id in e.route_table_ids]
    if attached:
        return [f"Gateway endpoint {attached[0].id} ({service}) lists {table_id}, but the table "
                f"has no route to its prefix list: the endpoint route was removed; re-associate "
                f"{table_id} with {attached[0].id}."]
    if gateways:
        return [f"Gateway endpoint {', '.join(e.id for e in gateways)} ({service}) exists but is "
                f"not associated with {table_id}: add {table_id} to it."]
    return [f"{inventory.vpc_id} has no gateway endpoint for {service}: S3 Express One Zone "
            f"names need their own; the S3 gateway endpoint (com.amazonaws.{inventory.region}.s3) "
            "does not carry them."]


def _host_notes(target: Target, form: S3HostForm, region: str | None) -> list[str]:
    """Evidence that comes from the form of the hostname itself."""
    notes: list[str] = []
    if form.form is HostForm.GLOBAL and form.bucket:
        # Only s3.amazonaws.com itself always answers from us-east-1. With a virtual-hosted
        # bucket the legacy global name follows the bucket: for a bucket of a region launched
        # before 2019-03-20 S3 updates the DNS record to the bucket's region (until then us-east-1
        # answers with a 307 redirect); later regions answer 400 (S3 user guide, "Virtual hosting
        # of general purpose buckets: Legacy global endpoint",
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html#deprecated-global-endpoint).
        notes.append(f"{target.host} is the legacy global S3 name with bucket {form.bucket}: DNS "
                     "answers it with addresses of the bucket's region (us-east-1 only until S3 "
                     "updates the record), so which gateway endpoint could carry it depends on "
                     f"that region; use {form.bucket}.s3.{region or 'REGION'}.amazonaws.com.")
    elif form.form is HostForm.GLOBAL and region and region != form.region:
        notes.append(f"{target.host} is the legacy global S3 name: it resolves to {form.region}, "
                     f"whose S3 ranges this {region} VPC's gateway endpoint does not cover; use "
                     f"s3.{region}.amazonaws.com.")
    elif form.form is HostForm.GLOBAL:
        notes.append(f"{target.host} is the legacy global S3 name; prefer s3.{form.region}.amazonaws.com.")
    elif form.form is HostForm.ACCELERATE:
        # Transfer Acceleration runs through CloudFront edge locations (S3 user guide,
        # "Configuring fast, secure file transfers using Amazon S3 Transfer Acceleration").
        notes.append(f"{target.host} is a Transfer Acceleration name: CloudFront edges, always public.")
    elif form.region and region and form.region != region and form.form is not HostForm.VPCE:
        notes.append(f"{target.host} names region {form.region}, not this VPC's {region}: "
                     "a gateway endpoint does not cover it.")
    elif form.form is HostForm.VPCE:
        notes.append(f"{target.host} is an interface-endpoint name of {form.endpoint_id}.")
    return notes


def _global_answer_note(target: Target, form: S3HostForm,
                        verdicts: tuple[AddressVerdict, ...]) -> list[str]:
    """What DNS answered for BUCKET.s3.amazonaws.com: the bucket's region, not a fixed one."""
    if form.form is not HostForm.GLOBAL or not form.bucket:
        return []
    regions = sorted({v.s3_region for v in verdicts if v.s3_region})
    ips = ", ".join(v.ip for v in verdicts)
    if not regions:
        return [f"DNS answered {target.host} with {ips}, outside S3's published ranges: the "
                "bucket's region cannot be read from the answer."]
    return [f"DNS answered {target.host} with {ips}: S3 of {', '.join(regions)}, the region "
            f"this bucket's name resolves to now."]


def verdict_for_target(target: Target, answer: DnsAnswer | None, facts: Facts,
                       ranges: S3RangeIndex | None = None) -> TargetVerdict:
    """The path, status and reasons for one target from its DNS answer and the facts."""
    ranges = ranges or s3_range_index(tuple(facts.s3_ranges))
    region = facts.region
    form = parse_s3_host(target.host)
    notes = _host_notes(target, form, region)
    if answer is None or answer.failure is not None or not answer.addresses:
        why = (answer.failure.message if answer and answer.failure
               else f"{target.host} resolved to no address")
        # A DNS failure of the checked name is CRITICAL, not UNKNOWN (Nagios plugin guidelines).
        return TargetVerdict(target=target, path=PathKind.UNRESOLVED, status=Status.CRITICAL,
                             reason=why, dns=answer, evidence=tuple(notes), errors=(why,))
    verdicts = tuple(path_for_address(a.ip, facts, ranges, form) for a in answer.addresses)
    paths = {v.path for v in verdicts}
    path = paths.pop() if len(paths) == 1 else PathKind.MIXED
    allowed = [target.expect.allows(v.path) for v in verdicts]
    if any(v.path is PathKind.BLOCKED for v in verdicts):
        # Routed but dropped: the traffic never arrives, whatever was expected.
        status = Status.CRITICAL
    elif any(v.path is PathKind.UNKNOWN for v in verdicts):
        status = Status.UNKNOWN
    elif all(allowed):
        status = Status.OK
    elif any(allowed):
        status = Status.WARNING
    else:
        status = Status.CRITICAL
    evidence = list(notes) + _global_answer_note(target, form, verdicts)
    if path is PathKind.MIXED:
        evidence.append(f"{target.host}'s addresses take different paths: "
                        + ", ".join(f"{v.ip} {v.path.value}" for v in verdicts) + ".")
    if facts.stale and facts.stale_warning and status is Status.OK:
        status = Status.WARNING
    if facts.stale:
        evidence.append(f"EC2 facts are stale: {facts.stale}.")
    reason = _reason(target, path, status, verdicts, facts)
    # What the hostname's form adds: acceleration, MRAP, dual-stack, private DNS modes, a bucket
    # in another region (agent/forms.py documents each rule and its AWS source).
    ruling = form_ruling(target, answer, verdicts, path, facts)
    evidence.extend(ruling.notes)
    if ruling.status is not None:
        status = Status.worst([status, ruling.status])
        reason = ruling.reason or reason
    return TargetVerdict(target=target, path=path, status=status, reason=reason,
                         addresses=verdicts, dns=answer, evidence=tuple(evidence),
                         errors=tuple(facts.problems) if status is Status.UNKNOWN else ())


def _reason(target: Target, path: PathKind, status: Status, verdicts: tuple[AddressVerdict, ...],
            facts: Facts) -> str:
    """One line a person reads first."""
    first = verdicts[0]
    if path is PathKind.GATEWAY:
        what = f"gateway endpoint {first.endpoint_id}"
    elif path is PathKind.INTERFACE:
        what = f"interface endpoint {first.endpoint_id}"
    elif path is PathKind.PUBLIC and first.route is not None:
        what = f"public via {first.route.route.target_id}"
        if first.s3_region:
            what += f" (S3 {first.s3_region})"
    elif path is PathKind.TRANSIT and first.route is not None:
        what = f"transit via {first.route.route.target_id}"
    elif path is PathKind.BLOCKED:
        what = "blocked: " + _blocked_phrase(first)
    elif path is PathKind.MIXED:
        what = "mixed: " + ", ".join(sorted({v.path.value for v in verdicts}))
        blocked = next((v for v in verdicts if v.path is PathKind.BLOCKED), None)
        if blocked is not None:
            what += f" ({blocked.ip} blocked: {_blocked_phrase(blocked)})"
    elif path is PathKind.UNKNOWN:
        what = "path unknown: " + ("; ".join(facts.problems) or first.evidence[-1])
    else:
        what = path.value.replace("_", " ")
    if status is Status.OK:
        return what
    if status is Status.UNKNOWN:
        return what
    expect = target.expect.value
    if status is Status.WARNING and facts.stale and facts.stale_warning and\
            target.expect.allows(path):
        return f"{what}; facts stale"
    return f"{what}; expected {expect}"


def _blocked_phrase(verdict: AddressVerdict) -> str:
    """``gateway via vpce-… dropped by security group sg-… (egress)``."""
    would = verdict.would_take.value if verdict.would_take else "?"
    via = f" via {verdict.route.route.target_id}" if verdict.route else ""
    blocker = verdict.blocked_by[0] if verdict.blocked_by else None
    if blocker is None:
        return f"would take {would}{via}"
    what = {"security_group": "security group", "network_acl": "network ACL",
            "block_public_access": "VPC Block Public Access"}.get(blocker.kind, blocker.kind)
    name = blocker.mode if blocker.kind == "block_public_access" else blocker.id
    rule = f" rule {blocker.rule}" if blocker.rule else ""
    return f"would take {would}{via}, dropped by {what} {name}{rule} ({blocker.direction})"


def evaluate(targets: Iterable[Target], answers: dict[str, DnsAnswer], facts: Facts,
             ) -> tuple[TargetVerdict, ...]:
    """Verdicts for every target, with one range index shared across them."""
    ranges = s3_range_index(tuple(facts.s3_ranges))
    return tuple(verdict_for_target(t, answers.get(t.host), facts, ranges) for t in targets)


def overall_status(verdicts: Iterable[TargetVerdict], problems: Iterable[str] = ()) -> Status:
    """The report's status: the worst target status, UNKNOWN when facts are missing entirely."""
    statuses = [v.status for v in verdicts]
    if not statuses:
        return Status.UNKNOWN if list(problems) else Status.OK
    return Status.worst(statuses)
