"""Rules that depend on the form of an S3 hostname (issue 4, section 2). Pure: facts in, ruling out.

The routing of each address is decided by :func:`s3_route_agent.engine.verdict.path_for_address`; what a
hostname's *form* adds on top is here, so the verdict engine calls one function:

* Transfer Acceleration names are CloudFront edges: public by design, CRITICAL wherever a
  private path is expected (S3 user guide, "Transfer Acceleration",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/transfer-acceleration.html).
* Multi-Region Access Point names are private only through an interface endpoint of
  ``com.amazonaws.s3-global.accesspoint``; a gateway endpoint cannot carry them (S3 user guide,
  "Multi-Region Access Points: AWS PrivateLink",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/MultiRegionAccessPointsPrivateLink.html).
* Dual-stack names answer AAAA; a gateway endpoint carries IPv6 only with IpAddressType
  ``dualstack`` (VPC user guide, "Gateway endpoints",
  https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html).
* Interface-endpoint private DNS: for all resolvers it answers ``s3.REGION``,
  ``*.s3.REGION``, ``s3-accesspoint.REGION`` and ``s3-control.REGION`` with the ENI addresses;
  with ``PrivateDnsOnlyForInboundResolverEndpoint`` lookups from inside the VPC get public
  addresses (and use the gateway endpoint) and only on-premises lookups through an inbound
  resolver get the ENIs; global, dash-region, website and FIPS names are never covered (S3 user
  guide, "AWS PrivateLink for Amazon S3: Private DNS",
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/privatelink-interface-endpoints.html#private-dns).
* A bucket in another region (GetBucketLocation) is a bypass of this VPC's gateway endpoint,
  which carries only its own region's S3 (VPC user guide, "Gateway endpoints for Amazon S3",
  https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html) -- unless a
  cross-Region interface endpoint serving that region carries it (PrivateLink guide,
  "Cross-region enabled AWS services",
  https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-cross-region-privatelink-support.html).
* An interface endpoint carries IPv6 only with IpAddressType ``dualstack`` or ``ipv6``, and its
  DNS names get AAAA records only with DnsRecordIpType ``ipv6``, ``dualstack`` or (regional and
  zonal names) ``service-defined`` (EC2 API reference, DnsOptionsSpecification,
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DnsOptionsSpecification.html;
  PrivateLink guide, "IP address types",
  https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html#aws-service-ip-address-type):
  AAAA answers beside an endpoint's A answers are judged against what it carries.
* Which gateway endpoint service can carry a name (:func:`gateway_service`): S3 Express One Zone
  names (zonal and ``s3express-control``) only ``com.amazonaws.REGION.s3express``, with its own
  prefix list; Object Lambda, S3 on Outposts, MRAP and acceleration names none; every other S3
  name ``com.amazonaws.REGION.s3``. Sources at each rule below.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from s3_route_agent.engine.hostnames import HostForm, S3HostForm, parse_s3_host
from s3_route_agent.engine.model import (AddressVerdict, DnsAnswer, Facts, Inventory, PathKind,
                                         Status, Target, VpcEndpoint)

logger = logging.getLogger(__name__)

MRAP_SERVICE = "com.amazonaws.s3-global.accesspoint"
# Forms whose names interface-endpoint private DNS answers (see the module docstring), unless
# the name is a FIPS name: "AWS PrivateLink for Amazon S3 does not support ... FIPS endpoints"
# (S3 user guide, "AWS PrivateLink for Amazon S3: Restrictions and limitations",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/privatelink-interface-endpoints.html#privatelink-limitations),
# so s3-fips, s3-accesspoint-fips and s3-control-fips names are never covered.
PRIVATE_DNS_FORMS = (HostForm.REGIONAL, HostForm.ACCESS_POINT, HostForm.CONTROL)
# Private DNS answers only the three families above ("Private DNS" section, same page).
NOT_PRIVATE_DNS_FORMS = (HostForm.GLOBAL, HostForm.DASH_REGION, HostForm.WEBSITE,
                         HostForm.S3EXPRESS, HostForm.S3EXPRESS_CONTROL, HostForm.OBJECT_LAMBDA,
                         HostForm.OUTPOSTS)
# Names no gateway endpoint carries: Object Lambda access points do not support gateway
# endpoints and their ranges are not in the S3 prefix list (S3 user guide, "Security
# considerations for S3 Object Lambda Access Points: Object Lambda Access Point IP addresses",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/olap-security.html#olap-ips); S3 on
# Outposts data goes through S3 on Outposts endpoints in the VPC, its management APIs through
# PrivateLink (S3 user guide, "Accessing S3 on Outposts using VPC-only access points",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/WorkingWithS3Outposts.html; "AWS
# PrivateLink for S3 on Outposts": "AWS PrivateLink doesn't support ... S3 on Outposts data
# transfer APIs", text checked in the awsdocs/amazon-s3-userguide archive,
# doc_source/s3-outposts-privatelink-interface-endpoints.md); MRAP and acceleration: above.
NO_GATEWAY_FORMS = (HostForm.OBJECT_LAMBDA, HostForm.OUTPOSTS, HostForm.MRAP, HostForm.ACCELERATE)
S3EXPRESS_FORMS = (HostForm.S3EXPRESS, HostForm.S3EXPRESS_CONTROL)


@dataclass(frozen=True)
class FormRuling:
    """What a hostname's form adds to a verdict: evidence, and a status/reason when it decides."""

    notes: tuple[str, ...] = ()
    status: Status | None = None     # set when the form alone decides the status
    reason: str | None = None        # the one-line reason that goes with that status


def _mrap_endpoints(facts: Facts) -> list[VpcEndpoint]:
    inventory = facts.inventory
    if inventory is None:
        return []
    return [e for e in inventory.endpoints if e.kind == "interface"
            and e.service_name == MRAP_SERVICE]


def _s3_endpoints(facts: Facts, region: str, kind: str) -> tuple[VpcEndpoint, ...]:
    return facts.inventory.s3_endpoints(region, kind) if facts.inventory else ()


def form_ruling(target: Target, answer: DnsAnswer | None, verdicts: tuple[AddressVerdict, ...],
                path: PathKind, facts: Facts) -> FormRuling:
    """Evidence (and, for acceleration and MRAP, the status) that the hostname's form adds."""
    form = parse_s3_host(target.host)
    region = facts.region
    notes: list[str] = []
    status: Status | None = None
    reason: str | None = None
    wants_private = target.expect.wants_private

    if form.form is HostForm.ACCELERATE and wants_private:
        status = Status.CRITICAL
        reason = (f"Transfer Acceleration name: CloudFront edges, public by design; expected "
                  f"{target.expect.value} (set use_accelerate_endpoint=False)")
        notes.append(f"{target.host} can never take a VPC endpoint: Transfer Acceleration "
                     "requests enter AWS at CloudFront edge locations over the internet.")

    if form.form is HostForm.MRAP:
        mrap_status, mrap_reason, mrap_notes = _mrap(target, verdicts, path, facts)
        notes.extend(mrap_notes)
        if mrap_status is not None and wants_private:
            status, reason = mrap_status, mrap_reason

    if region:
        notes.extend(_service_notes(target, form, verdicts, facts, region))

    if form.dualstack and region:
        notes.extend(_dualstack(target, answer, facts, form.region or region))
    notes.extend(_interface_ipv6(answer, verdicts, facts))

    if region:
        notes.extend(_private_dns(target, form, path, verdicts, facts, region))

    other = facts.bucket_region(target.bucket or form.bucket)
    carriers = _cross_region_carriers(verdicts, facts, other)
    if other and region and other != region and form.form is not HostForm.MRAP and carriers:
        notes.append(f"Bucket {target.bucket or form.bucket} is in {other} (GetBucketLocation): "
                     f"cross-Region interface endpoint {', '.join(carriers)} carries S3 of "
                     f"{other} privately from this {region} VPC.")
    elif other and region and other != region and form.form is not HostForm.MRAP:
        notes.append(f"Bucket {target.bucket or form.bucket} is in {other} (GetBucketLocation), "
                     f"not this VPC's {region}: this VPC's gateway endpoint does not carry S3 "
                     f"of {other}, so requests for it bypass the endpoint and follow the "
                     f"default route.")
        if wants_private and status is None:
            # S3 answers a request for a bucket on another region's endpoint with a redirect
            # (PermanentRedirect / AuthorizationHeaderMalformed naming the bucket's region), and
            # the SDK retries there: the data moves over S3 of that region, which no endpoint of
            # this VPC serves (VPC user guide, "Gateway endpoints for Amazon S3": same Region).
            status = Status.CRITICAL
            reason = (f"bucket {target.bucket or form.bucket} is in {other}: its data moves "
                      f"over S3 of {other}, outside this VPC's {region} endpoints; expected "
                      f"{target.expect.value}")
    return FormRuling(tuple(notes), status, reason)


def _cross_region_carriers(verdicts: tuple[AddressVerdict, ...], facts: Facts,
                           bucket_region: str | None) -> list[str]:
    """The interface endpoints serving ``bucket_region`` that carry every address, or []."""
    inventory = facts.inventory
    if not bucket_region or inventory is None or not verdicts:
        return []
    carriers: list[str] = []
    for verdict in verdicts:
        endpoint = inventory.endpoint(verdict.endpoint_id) if verdict.endpoint_id else None
        if (verdict.path is not PathKind.INTERFACE or endpoint is None
                or endpoint.service_region_served != bucket_region):
            return []
        carriers.append(endpoint.id)
    return list(dict.fromkeys(carriers))


def _interface_ipv6(answer: DnsAnswer | None, verdicts: tuple[AddressVerdict, ...],
                    facts: Facts) -> list[str]:
    """AAAA answers beside an interface endpoint's A answers, against what the endpoint carries
    (IpAddressType) and publishes (DnsRecordIpType): see the module docstring."""
    inventory = facts.inventory
    if answer is None or inventory is None:
        return []
    by_ip = {v.ip: v for v in verdicts}
    endpoints = {v.endpoint_id for v in verdicts
                 if v.path is PathKind.INTERFACE and v.family == "ipv4" and v.endpoint_id}
    others = [a.ip for a in answer.addresses if a.family == "ipv6"
              and (by_ip.get(a.ip) is None or by_ip[a.ip].endpoint_id not in endpoints)]
    notes: list[str] = []
    for endpoint_id in sorted(endpoints):
        endpoint = inventory.endpoint(endpoint_id)
        if endpoint is None or not others:
            continue
        records = endpoint.dns_record_ip_type or "ipv4"
        if not endpoint.carries_ipv6:
            notes.append(f"Interface endpoint {endpoint.id} has IpAddressType "
                         f"{endpoint.ip_address_type or 'ipv4'}: it carries no IPv6, so the AAAA "
                         f"answer(s) {', '.join(others)} are not its own and take the IPv6 "
                         "routes (clients preferring IPv6 leave the endpoint); set its "
                         "IpAddressType and DnsRecordIpType to dualstack.")
        elif records == "ipv4":
            notes.append(f"Interface endpoint {endpoint.id} is {endpoint.ip_address_type} but "
                         "its DnsRecordIpType is ipv4 (A records only): the AAAA answer(s) "
                         f"{', '.join(others)} come from elsewhere and take the IPv6 routes; "
                         "set DnsRecordIpType to dualstack.")
        else:
            notes.append(f"Interface endpoint {endpoint.id} ({endpoint.ip_address_type}, "
                         f"DnsRecordIpType {records}) publishes AAAA records, yet "
                         f"{', '.join(others)} is not one of its addresses: another resolver "
                         "or record answered.")
    return notes


def _mrap(target: Target, verdicts: tuple[AddressVerdict, ...], path: PathKind, facts: Facts,
          ) -> tuple[Status | None, str | None, list[str]]:
    """MRAP: private only through a com.amazonaws.s3-global.accesspoint interface endpoint."""
    endpoints = _mrap_endpoints(facts)
    inventory = facts.inventory
    notes: list[str] = []
    if path is PathKind.INTERFACE:
        used = {v.endpoint_id for v in verdicts}
        services = {e.id: e.service_name for e in (inventory.endpoints if inventory else ())}
        wrong = sorted(i for i in used if i and services.get(i) not in (None, MRAP_SERVICE))
        if wrong:
            notes.append(f"{target.host} resolves to interface endpoint {', '.join(wrong)}, which "
                         f"is not a {MRAP_SERVICE} endpoint: it cannot serve a Multi-Region "
                         "Access Point.")
            return (Status.CRITICAL, f"MRAP name on a non-MRAP interface endpoint "
                    f"{', '.join(wrong)}; expected {MRAP_SERVICE}", notes)
        notes.append(f"{target.host} is a Multi-Region Access Point reached through its "
                     f"{MRAP_SERVICE} interface endpoint (SigV4A).")
        return None, None, notes
    if path is PathKind.GATEWAY:
        notes.append(f"{target.host} is a Multi-Region Access Point: gateway endpoints cannot "
                     f"carry it; only a {MRAP_SERVICE} interface endpoint can.")
        return (Status.CRITICAL, "MRAP names cannot use a gateway endpoint; create a "
                f"{MRAP_SERVICE} interface endpoint", notes)
    if endpoints:
        ids = ", ".join(e.id for e in endpoints)
        off = [e.id for e in endpoints if not e.private_dns_enabled]
        fix = (f"enable private DNS on {', '.join(off)}" if off
               else "check that this host uses the VPC's resolver")
        notes.append(f"{MRAP_SERVICE} endpoint {ids} exists but {target.host} does not resolve "
                     f"to it: {fix}.")
    else:
        notes.append(f"{target.host} is a Multi-Region Access Point: it is private only through "
                     f"a {MRAP_SERVICE} interface endpoint, and {facts.inventory.vpc_id if facts.inventory else 'this VPC'} "
                     "has none; create one with private DNS.")
    return None, None, notes


def _dualstack(target: Target, answer: DnsAnswer | None, facts: Facts, region: str) -> list[str]:
    """AAAA answers against the gateway endpoint's IP address type."""
    if answer is None:
        return []
    ipv6 = [a.ip for a in answer.addresses if a.family == "ipv6"]
    if not ipv6:
        return [f"{target.host} is a dual-stack name but returned no AAAA answer here: IPv4 only."]
    gateways = _s3_endpoints(facts, region, "gateway")
    if not gateways:
        return [f"{target.host} is a dual-stack name with AAAA answer(s) {', '.join(ipv6)}: IPv6 "
                "traffic follows the IPv6 routes."]
    out = []
    for gateway in gateways:
        kind = gateway.ip_address_type or "ipv4"
        carries = kind in ("dualstack", "ipv6")
        out.append(f"{target.host} is a dual-stack name with AAAA answer(s) {', '.join(ipv6)}; "
                   f"gateway endpoint {gateway.id} has IpAddressType {kind}: "
                   + ("it carries IPv6 too." if carries else
                      "it carries IPv4 only, so clients preferring IPv6 follow the IPv6 routes; "
                      "set its IpAddressType to dualstack or use the IPv4-only name."))
    return out


def _private_dns(target: Target, form: S3HostForm, path: PathKind,
                 verdicts: tuple[AddressVerdict, ...], facts: Facts, region: str) -> list[str]:
    """How the S3 interface endpoints' private DNS mode bears on this name."""
    # The endpoints whose private DNS could answer this name: those serving its region (a
    # cross-Region endpoint answers the names of its service region).
    name_region = form.region or region
    endpoints = list(dict.fromkeys(
        e for e in (*_s3_endpoints(facts, region, "interface"),
                    *_s3_endpoints(facts, name_region, "interface")) if e.is_available))
    if not endpoints or form.form is HostForm.VPCE:
        return []
    notes: list[str] = []
    for endpoint in endpoints:
        served = endpoint.service_region_served or region
        if (form.fips or form.form in NOT_PRIVATE_DNS_FORMS) and endpoint.private_dns_enabled:
            kind = "FIPS" if form.fips else form.form.value.replace('_', '-')
            notes.append(f"Private DNS of {endpoint.id} does not cover {kind} "
                         f"names such as {target.host}; only s3.{served}, s3-accesspoint.{served} "
                         f"and s3-control.{served} names.")
            continue
        # Dual-stack names: whether private DNS answers them is not confirmed by the pages
        # above, so nothing is claimed for them (unknown).
        if (form.form not in PRIVATE_DNS_FORMS or form.fips or form.dualstack
                or served != name_region):
            continue
        if not endpoint.private_dns_enabled:
            if path is PathKind.GATEWAY and target.expect.allows(path):
                # Private through the gateway endpoint as expected: say how, suggest nothing.
                notes.append(f"Interface endpoint {endpoint.id} has private DNS off: {target.host} "
                             "resolves to S3's public addresses, which the gateway endpoint "
                             "carries.")
            elif path is not PathKind.INTERFACE:
                notes.append(f"Interface endpoint {endpoint.id} has private DNS off: {target.host} "
                             f"resolves to S3's public addresses; enable private DNS on "
                             f"{endpoint.id} or use its endpoint-specific name.")
        elif endpoint.private_dns_only_for_inbound_resolver_endpoint:
            notes.append(f"Interface endpoint {endpoint.id} has private DNS only for inbound "
                         f"resolver endpoints: lookups of {target.host} from inside the VPC get "
                         "public addresses (carried by the gateway endpoint); only on-premises "
                         "lookups through the inbound resolver get the endpoint's addresses.")
        else:
            if path is PathKind.INTERFACE:
                notes.append(f"Interface endpoint {endpoint.id} has private DNS for all "
                             f"resolvers: {target.host} resolves to its network interfaces.")
            else:
                notes.append(f"Interface endpoint {endpoint.id} has private DNS for all "
                             f"resolvers, yet {target.host} did not resolve to its network "
                             "interfaces: this host does not use the VPC's resolver (custom "
                             "DNS, /etc/hosts or a forwarder).")
    return notes


def gateway_service(form: S3HostForm, region: str) -> str | None:
    """The gateway endpoint service that can carry ``form``'s traffic from a VPC in ``region``.

    S3 Express One Zone's zonal and Regional (``s3express-control``) names go through a gateway
    endpoint for ``com.amazonaws.REGION.s3express`` (S3 user guide, "Networking for directory
    buckets", https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-express-networking.html;
    "Step 1: Configure a gateway VPC endpoint to reach S3 Express One Zone directory buckets",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-express-tutorial-endpoints.html),
    whose AWS-managed prefix list is ``com.amazonaws.REGION.s3express``, not S3's (VPC user
    guide, "AWS-managed prefix lists",
    https://docs.aws.amazon.com/vpc/latest/userguide/working-with-aws-managed-prefix-lists.html).
    None for the names of NO_GATEWAY_FORMS; ``com.amazonaws.REGION.s3`` for the rest.
    """
    if form.form in S3EXPRESS_FORMS:
        return f"com.amazonaws.{region}.s3express"
    if form.form in NO_GATEWAY_FORMS:
        return None
    return f"com.amazonaws.{region}.s3"


def gateway_endpoints(form: S3HostForm, inventory: Inventory, region: str
                      ) -> tuple[VpcEndpoint, ...]:
    """The VPC's gateway endpoints of :func:`gateway_service` for ``form`` (none for
    NO_GATEWAY_FORMS)."""
    service = gateway_service(form, region)
    if service is None:
        return ()
    if form.form not in S3EXPRESS_FORMS:
        return inventory.s3_endpoints(region, "gateway")
    return tuple(e for e in inventory.endpoints
                 if e.kind == "gateway" and e.service_name == service)


def _service_notes(target: Target, form: S3HostForm, verdicts: tuple[AddressVerdict, ...],
                   facts: Facts, region: str) -> list[str]:
    """What carries S3 Express, Object Lambda and S3 on Outposts names (rules: see above)."""
    if form.form in S3EXPRESS_FORMS:
        service = gateway_service(form, form.region or region)
        kind = "Zonal" if form.form is HostForm.S3EXPRESS else "Regional (control plane)"
        used = sorted({v.endpoint_id for v in verdicts if v.path is PathKind.GATEWAY
                       and v.endpoint_id})
        if used:
            return [f"{target.host} is an S3 Express One Zone {kind} endpoint name, carried by "
                    f"gateway endpoint {', '.join(used)} of {service}."]
        inventory = facts.inventory
        have = (gateway_endpoints(form, inventory, region) if inventory is not None
                and form.region in (None, region) else ())
        where = (f"{inventory.vpc_id} has {', '.join(e.id for e in have)}" if have
                 else f"{inventory.vpc_id if inventory else 'this VPC'} has none")
        return [f"{target.host} is an S3 Express One Zone {kind} endpoint name: only a gateway "
                f"endpoint for {service} (its own prefix list) carries it, never the S3 gateway "
                f"endpoint com.amazonaws.{form.region or region}.s3; {where}."]
    if form.form is HostForm.OBJECT_LAMBDA:
        return [f"{target.host} is an S3 Object Lambda Access Point name: Object Lambda does not "
                "support gateway endpoints and its address ranges are not in the S3 prefix list, "
                "so no gateway endpoint carries it."]
    if form.form is HostForm.OUTPOSTS and form.bucket:
        return [f"{target.host} is an S3 on Outposts access point name: its data goes to the S3 "
                "on Outposts endpoint's network interfaces in the VPC, never through a gateway "
                "endpoint or PrivateLink."]
    if form.form is HostForm.OUTPOSTS:
        # PrivateLink for S3 on Outposts serves the bucket and endpoint management APIs (the
        # archive page above names no service name, so none is guessed here).
        return [f"{target.host} is the S3 on Outposts management endpoint (bucket and endpoint "
                "management APIs): private only through an S3 on Outposts interface endpoint "
                "(AWS PrivateLink for S3 on Outposts); no gateway endpoint carries it."]
    return []
