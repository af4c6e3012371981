"""EC2 inventory: the subnet's route table, the S3 prefix list, the VPC's S3 endpoints and ENIs,
and what can drop traffic the routes let through (security groups, network ACLs, VPC Block
Public Access).

One refresh makes a small, fixed number of filtered, read-only EC2 calls (the request token
bucket of each Describe API is shared by every host of the account and region — EC2 API
reference, "Request throttling for the Amazon EC2 API"):

====================================== =========================================================
DescribeRouteTables                    1 (filter ``vpc-id``)
DescribeManagedPrefixLists             1 (filter ``prefix-list-name`` = ``com.amazonaws.REGION.s3``)
DescribeVpcEndpoints                   1 (filter ``vpc-id``), plus 1 (filter ``vpc-endpoint-id``)
                                       only when a name resolves to an endpoint ENI of another
                                       VPC whose endpoint is not known yet
GetManagedPrefixListEntries            one per prefix list whose entries are not known at its
                                       version: the S3 list (skipped while its version is
                                       unchanged), any other list the route table or the
                                       security-group rules reference
DescribeNetworkInterfaces              1 for the S3 interface endpoints' ENIs (skipped when there
                                       are none or their ids are unchanged), 1 to look up private
                                       addresses no such ENI holds, 1 for this host's interface
                                       (filter ``attachment.instance-id``) only when IMDS gave no
                                       security group ids
DescribeNatGateways                    1 (filters ``vpc-id``, ``state=available``)
DescribeSecurityGroupRules             1 (filter ``group-id``: this host's groups and the S3
                                       interface endpoints')
DescribeNetworkAcls                    1 (filter ``association.subnet-id``: this host's subnet,
                                       the NAT gateways' and the endpoint ENIs' subnets)
DescribeVpcBlockPublicAccessOptions    1, only when the route table has a route to an internet,
                                       egress-only internet or NAT gateway
DescribeVpcBlockPublicAccessExclusions 1 (filter ``resource-arn``: this VPC and those subnets),
                                       only when Block Public Access is not ``off``
====================================== =========================================================

A denial of one of the last four (an instance role written before they existed) is recorded as
a fact: the verdicts that depend on it are ``unknown`` and say which permission is missing;
every other failure raises :class:`s3_route_agent.errors.InventoryError`.

IAM: ``ec2:`` + each API name above, on ``Resource: *``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from s3_route_agent.aws import botocore_errors, operation_method
from s3_route_agent.errors import InventoryError, inventory_error_from
from s3_route_agent.engine.model import (
    BlockPublicAccess,
    BlockPublicAccessExclusion,
    Inventory,
    NatGateway,
    NetworkAcl,
    NetworkAclEntry,
    NetworkInterface,
    PrefixList,
    Route,
    RouteOrigin,
    RouteTable,
    RouteTargetKind,
    SecurityGroupRule,
    TrafficFilters,
    VpcEndpoint,
)

logger = logging.getLogger(__name__)

# AWS's description of an interface endpoint's network interface ("VPC Endpoint Interface
# vpce-0123456789abcdef0"): the only place an ENI names its endpoint (PrivateLink guide, "View
# the network interfaces of an interface endpoint"; DescribeNetworkInterfaces shows it as
# Description, with InterfaceType "vpc_endpoint").
_ENDPOINT_ENI_DESCRIPTION = re.compile(r"^VPC Endpoint Interface (vpce-[0-9a-f]+)\s*$")

# EC2 refuses more than 200 values in one filter ("The maximum number of filter values specified
# on a single call is 200", error FilterLimitExceeded); a DNS answer set never comes near that,
# but a caller's list might.
_MAX_FILTER_VALUES = 200

# A server that keeps answering with a NextToken must not keep us calling forever.
_MAX_PAGES = 20


def s3_service_names(region: str) -> frozenset[str]:
    """Endpoint service names that carry S3 traffic of ``region``.

    ``com.amazonaws.REGION.s3`` (gateway and interface endpoints), the multi-region access point
    service ``com.amazonaws.s3-global.accesspoint`` (S3 user guide, "Configuring a Multi-Region
    Access Point for use with AWS PrivateLink") and S3 Express One Zone's
    ``com.amazonaws.REGION.s3express``
    (S3 user guide, "Networking for directory buckets").
    """
    return frozenset({f"com.amazonaws.{region}.s3", "com.amazonaws.s3-global.accesspoint",
                      f"com.amazonaws.{region}.s3express"})


# com.amazonaws.REGION.s3 of any region: a cross-Region interface endpoint serves another
# region's S3 (PrivateLink guide, "Cross-region enabled AWS services",
# https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-cross-region-privatelink-support.html).
_S3_SERVICE = re.compile(r"^com\.amazonaws\.[a-z]{2}(-[a-z]+)+-\d+\.(s3|s3express)$")
# Only these endpoint types carry S3 requests; Resource and ServiceNetwork endpoints
# (VPC Lattice) and Gateway Load Balancer endpoints never do (EC2 API reference, VpcEndpoint).
_S3_ENDPOINT_TYPES = ("Gateway", "Interface")


def is_s3_endpoint(endpoint: Mapping[str, Any]) -> bool:
    """True for a gateway or interface endpoint of an S3 service of any region (module
    docstring): cross-Region endpoints included, Resource-type endpoints never."""
    name = str(endpoint.get("ServiceName") or "")
    return (endpoint.get("VpcEndpointType") in _S3_ENDPOINT_TYPES
            and (bool(_S3_SERVICE.match(name)) or name == "com.amazonaws.s3-global.accesspoint"))


def s3_prefix_list_name(region: str) -> str:
    """The AWS-managed prefix list of S3 in ``region`` (VPC user guide, "AWS-managed prefix lists")."""
    return f"com.amazonaws.{region}.s3"


def collect_inventory(ec2: Any, region: str, vpc_id: str, subnet_id: str,
                      private_addresses: Iterable[str] = (),
                      clock: Callable[[], float] = time.time,
                      previous: Inventory | None = None,
                      host_security_group_ids: Sequence[str] | None = None,
                      host_addresses: Sequence[str] = (),
                      instance_id: str | None = None) -> Inventory:
    """Fetch what EC2 says about ``subnet_id``'s routing, the VPC's S3 endpoints and the filters.

    ``ec2`` is a boto3 EC2 client for ``region``. ``private_addresses`` are addresses the host's
    S3 names resolved to; any of them that no S3 endpoint ENI of this VPC holds is looked up by
    address (it may be an endpoint ENI in another VPC, reached over a transit gateway or
    peering). Raises :class:`s3_route_agent.errors.InventoryError` when an EC2 call fails.

    ``host_security_group_ids`` and ``host_addresses`` come from IMDS; when IMDS gave no group
    ids, ``instance_id`` (config) finds this host's interface instead.

    ``previous`` (the cached inventory being refreshed) saves calls on a refresh: the S3 prefix
    list's entries are fetched only when its version changed, the endpoint ENIs only when the
    set of endpoint ENI ids changed, other VPCs' endpoints only when new ones appear.
    """
    fetched_at = clock()
    route_tables = _pages(ec2, "DescribeRouteTables", "RouteTables",
                          Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    route_table = choose_route_table(route_tables, vpc_id, subnet_id)

    s3_lists = _pages(ec2, "DescribeManagedPrefixLists", "PrefixLists",
                      Filters=[{"Name": "prefix-list-name",
                                "Values": [s3_prefix_list_name(region)]}])
    s3_list = s3_lists[0] if s3_lists else None
    if s3_list is None:
        logger.warning("no managed prefix list named %s in %s", s3_prefix_list_name(region), region)
    elif len(s3_lists) > 1:
        logger.warning("%d prefix lists named %s; using %s", len(s3_lists),
                       s3_prefix_list_name(region), s3_list.get("PrefixListId"))

    raw_endpoints = _pages(ec2, "DescribeVpcEndpoints", "VpcEndpoints",
                           Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    if route_table is not None:
        route_table = _refine_endpoint_routes(route_table, raw_endpoints)
    endpoints = tuple(endpoint_from_api(e) for e in raw_endpoints if is_s3_endpoint(e))
    non_s3 = [str(e["VpcEndpointId"]) for e in raw_endpoints
              if not is_s3_endpoint(e) and e.get("VpcEndpointId")]

    interfaces = _endpoint_interfaces(ec2, endpoints, previous)
    held = {_canonical(a) for i in interfaces for a in i.addresses}
    known = {i.id for i in interfaces}
    interfaces += tuple(i for i in _interfaces_by_address(ec2, private_addresses, held)
                        if i.id not in known)
    remote_endpoints, remote_non_s3 = _remote_endpoints(ec2, interfaces, vpc_id, previous)
    non_s3 += [i for i in remote_non_s3 if i not in non_s3]

    nat_gateways = tuple(nat_gateway_from_api(n) for n in _pages(
        ec2, "DescribeNatGateways", "NatGateways",
        Filter=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available"]}]))

    filters = _collect_filters(ec2, region, vpc_id, subnet_id, route_table,
                               endpoints + remote_endpoints, interfaces, nat_gateways,
                               host_security_group_ids, host_addresses, instance_id)
    referenced = tuple(dict.fromkeys(r.prefix_list_id for r in filters.security_group_rules
                                     if r.prefix_list_id))
    prefix_lists = _prefix_lists(ec2, s3_list, route_table, previous, referenced)

    inventory = Inventory(
        region=region, vpc_id=vpc_id, subnet_id=subnet_id, route_table=route_table,
        prefix_lists=prefix_lists, endpoints=endpoints, interfaces=interfaces,
        nat_gateways=nat_gateways, fetched_at=fetched_at,
        s3_prefix_list_id=s3_list.get("PrefixListId") if s3_list else None,
        traffic_filters=filters, remote_endpoints=remote_endpoints,
        non_s3_endpoint_ids=tuple(non_s3))
    logger.info("inventory of %s/%s: route table %s (%s), %d S3 endpoint(s), %d ENI(s), "
                "%d NAT gateway(s), %d security group rule(s), %d network ACL(s), Block Public "
                "Access %s", vpc_id, subnet_id,
                route_table.id if route_table else None,
                route_table.association if route_table else "none",
                len(endpoints), len(interfaces), len(nat_gateways),
                len(filters.security_group_rules), len(filters.network_acls),
                filters.block_public_access.mode if filters.block_public_access else "not asked")
    return inventory


# ---------------------------------------------------------------------------------------------
# EC2 calls


def _pages(ec2: Any, operation: str, result_key: str, **params: Any) -> list[dict[str, Any]]:
    """All items of ``operation``'s ``result_key``, following NextToken; errors become InventoryError.

    No MaxResults is sent, so a normal answer is one page and one call.
    """
    method = operation_method(ec2, operation)
    items: list[dict[str, Any]] = []
    token: str | None = None
    seen: set[str] = set()
    for _ in range(_MAX_PAGES):
        kwargs = dict(params)
        if token:
            kwargs["NextToken"] = token
        try:
            response = method(**kwargs)
        except botocore_errors() as exc:
            raise inventory_error_from(exc, operation) from exc
        items.extend(response.get(result_key) or [])
        token = response.get("NextToken")
        if not token or token in seen:
            return items
        seen.add(token)
    logger.warning("%s: stopped after %d pages", operation, _MAX_PAGES)
    return items


def _prefix_lists(ec2: Any, s3_list: Mapping[str, Any] | None,
                  route_table: RouteTable | None,
                  previous: Inventory | None = None,
                  referenced: Sequence[str] = ()) -> tuple[PrefixList, ...]:
    """Entries of the S3 prefix list and of every other list the route table or the security
    group rules (``referenced``) name.

    One GetManagedPrefixListEntries call per list; normally the route table and the security
    groups reference only the S3 list (through the gateway endpoint's route, an egress rule to
    it), so this is normally one call, or none while the S3 list's version is unchanged. A list
    only a security group names whose entries are denied is left out (its rules judge
    ``unknown``).
    """
    wanted: dict[str, tuple[str, int | None]] = {}
    if s3_list and s3_list.get("PrefixListId"):
        wanted[s3_list["PrefixListId"]] = (str(s3_list.get("PrefixListName") or
                                               s3_list["PrefixListId"]),
                                           _int_or_none(s3_list.get("Version")))
    for route in route_table.routes if route_table else ():
        if route.is_prefix_list and route.destination not in wanted:
            # Only the S3 list was described; another list's name would cost a second
            # DescribeManagedPrefixLists call (its filters AND, so one call cannot fetch both
            # by name and by id), and the id is enough to match routes.
            wanted[route.destination] = (route.destination, None)
    optional = [i for i in referenced if i not in wanted]
    for list_id in optional:
        wanted[list_id] = (list_id, None)
    out = []
    for list_id, (name, version) in wanted.items():
        known = previous.prefix_list(list_id) if previous else None
        if known is not None and version is not None and known.version == version:
            # Same version, same entries (a managed prefix list's version increases with every
            # change: VPC user guide, "Managed prefix lists"): no GetManagedPrefixListEntries.
            out.append(PrefixList(id=list_id, name=name, version=version, cidrs=known.cidrs))
            continue
        try:
            entries = _pages(ec2, "GetManagedPrefixListEntries", "Entries", PrefixListId=list_id)
        except InventoryError as exc:
            if list_id not in optional or exc.kind not in ("access_denied", "not_found"):
                raise
            logger.warning("entries of %s (named by a security group rule): %s", list_id,
                           exc.message)
            continue
        out.append(PrefixList(id=list_id, name=name, version=version,
                              cidrs=tuple(str(e["Cidr"]) for e in entries if e.get("Cidr"))))
    return tuple(out)


def _endpoint_interfaces(ec2: Any, endpoints: tuple[VpcEndpoint, ...],
                         previous: Inventory | None = None) -> tuple[NetworkInterface, ...]:
    """The ENIs of the S3 interface endpoints, each tagged with its endpoint id (one call).

    When ``previous`` already holds exactly these ENI ids, its ENIs are reused without a call:
    an endpoint ENI keeps its private addresses for its life, so only a changed set of ENI ids
    (an endpoint or subnet added or removed) needs a new look.
    """
    owner = {eni: e.id for e in endpoints for eni in e.network_interface_ids}
    if not owner:
        return ()
    groups = {e.id: e.security_group_ids for e in endpoints}
    if previous is not None:
        known = {i.id: i for i in previous.interfaces if i.id in owner}
        if set(known) == set(owner):
            # The groups come from DescribeVpcEndpoints (Groups), asked on every refresh.
            return tuple(NetworkInterface(i.id, i.vpc_id, i.subnet_id, i.interface_type,
                                          i.description, i.addresses, owner[i.id],
                                          groups.get(owner[i.id]) or i.security_group_ids)
                         for i in known.values())
    # A filter rather than NetworkInterfaceIds: an id that vanished between the two calls (an
    # endpoint being deleted) then drops out instead of failing the whole call with
    # InvalidNetworkInterfaceID.NotFound. IncludeManagedResources: with the account's managed
    # resource visibility set to "hidden", Describe calls leave AWS-managed resources out
    # (EC2 API reference, ManagedResourceVisibilitySettings).
    found = []
    for chunk in _chunks(sorted(owner), _MAX_FILTER_VALUES):
        found += _pages(ec2, "DescribeNetworkInterfaces", "NetworkInterfaces",
                        Filters=[{"Name": "network-interface-id", "Values": chunk}],
                        IncludeManagedResources=True)
    return tuple(interface_from_api(n, owner.get(n.get("NetworkInterfaceId", ""))) for n in found)


def _interfaces_by_address(ec2: Any, addresses: Iterable[str], held: set[str]
                           ) -> tuple[NetworkInterface, ...]:
    """ENIs holding private ``addresses`` that no S3 endpoint ENI of this VPC holds (one call).

    IPv4 only: EC2 ANDs different filters, so IPv4 and IPv6 addresses (filter
    ``ipv6-addresses.ipv6-address``) cannot share one call, and a second call per run for the
    rarer IPv6 case is not worth the shared request budget.
    """
    wanted: list[str] = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(str(address).strip())
        except ValueError:
            logger.warning("ignoring %r: not an IP address", address)
            continue
        if ip.version == 4 and str(ip) not in held and str(ip) not in wanted:
            wanted.append(str(ip))
    if not wanted:
        return ()
    found = []
    for chunk in _chunks(wanted, _MAX_FILTER_VALUES):
        found += _pages(ec2, "DescribeNetworkInterfaces", "NetworkInterfaces",
                        Filters=[{"Name": "addresses.private-ip-address", "Values": chunk}],
                        IncludeManagedResources=True)
    return tuple(interface_from_api(n, endpoint_id_of(n)) for n in found)


def _remote_endpoints(ec2: Any, interfaces: tuple[NetworkInterface, ...], vpc_id: str,
                      previous: Inventory | None) -> tuple[tuple[VpcEndpoint, ...], list[str]]:
    """The endpoints of other VPCs' endpoint ENIs this host's names resolved to: S3 ones, and
    the ids of those that are not S3 endpoints (one call, only for endpoints not yet known).

    An ENI's description names its endpoint but not the endpoint's service: an EC2 or a
    Resource-type endpoint's ENI must never pass for an S3 interface endpoint.
    """
    wanted = sorted({i.endpoint_id for i in interfaces
                     if i.endpoint_id and i.vpc_id != vpc_id})
    if not wanted:
        return (), []
    known_s3 = {e.id: e for e in (previous.remote_endpoints if previous else ())}
    known_other = set(previous.non_s3_endpoint_ids if previous else ())
    if all(i in known_s3 or i in known_other for i in wanted):
        return (tuple(known_s3[i] for i in wanted if i in known_s3),
                [i for i in wanted if i in known_other])
    found: list[dict[str, Any]] = []
    for chunk in _chunks(wanted, _MAX_FILTER_VALUES):
        found += _pages(ec2, "DescribeVpcEndpoints", "VpcEndpoints",
                        Filters=[{"Name": "vpc-endpoint-id", "Values": chunk}])
    s3 = tuple(endpoint_from_api(e) for e in found if is_s3_endpoint(e))
    other = [str(e["VpcEndpointId"]) for e in found if not is_s3_endpoint(e)]
    return s3, other


def _host_interface(ec2: Any, instance_id: str, subnet_id: str) -> NetworkInterface | None:
    """This instance's interface in ``subnet_id`` (its primary one if several), by instance id."""
    found = _pages(ec2, "DescribeNetworkInterfaces", "NetworkInterfaces",
                   Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
    ranked = sorted(found, key=lambda n: (n.get("SubnetId") != subnet_id,
                                          (n.get("Attachment") or {}).get("DeviceIndex", 99)))
    return interface_from_api(ranked[0], None) if ranked else None


def _optional(facet: str, operation: str, call: Callable[[], Any],
              problems: list[tuple[str, str]]) -> Any:
    """Run ``call``; a denial becomes a (facet, why) problem and None, anything else raises."""
    try:
        return call()
    except InventoryError as exc:
        if exc.kind != "access_denied":
            raise
        logger.warning("%s", exc.message)
        problems.append((facet, exc.message))
        return None


_PUBLIC_KINDS = (RouteTargetKind.INTERNET_GATEWAY, RouteTargetKind.EGRESS_ONLY_INTERNET_GATEWAY,
                 RouteTargetKind.NAT_GATEWAY)


def _collect_filters(ec2: Any, region: str, vpc_id: str, subnet_id: str,
                     route_table: RouteTable | None, endpoints: tuple[VpcEndpoint, ...],
                     interfaces: tuple[NetworkInterface, ...],
                     nat_gateways: tuple[NatGateway, ...],
                     host_security_group_ids: Sequence[str] | None,
                     host_addresses: Sequence[str], instance_id: str | None) -> TrafficFilters:
    """Security groups, network ACLs and Block Public Access (module docstring's table)."""
    problems: list[tuple[str, str]] = []
    groups: tuple[str, ...] | None = tuple(host_security_group_ids or ()) or None
    addresses = tuple(host_addresses)
    if groups is None and instance_id:
        host = _optional("security_groups", "DescribeNetworkInterfaces",
                         lambda: _host_interface(ec2, instance_id, subnet_id), problems)
        if host is not None:
            groups = host.security_group_ids or None
            addresses = addresses or host.addresses
    if groups is None and not problems:
        problems.append(("security_groups", (
            f"no interface of {instance_id} in {subnet_id} was found" if instance_id else
            "IMDS gave no security-group-ids and identity.instance_id is not configured")))

    endpoint_enis = [i for i in interfaces if i.endpoint_id]
    wanted = list(dict.fromkeys([*(groups or ()), *(g for e in endpoints
                                                    for g in e.security_group_ids),
                                 *(g for i in endpoint_enis for g in i.security_group_ids)]))
    rules: list[SecurityGroupRule] = []
    described: list[str] = []
    if wanted:
        def fetch_rules() -> list[SecurityGroupRule]:
            found: list[SecurityGroupRule] = []
            for chunk in _chunks(wanted, _MAX_FILTER_VALUES):
                found += [security_group_rule_from_api(r) for r in _pages(
                    ec2, "DescribeSecurityGroupRules", "SecurityGroupRules",
                    Filters=[{"Name": "group-id", "Values": chunk}])]
            return found
        fetched = _optional("security_groups", "DescribeSecurityGroupRules", fetch_rules,
                            problems)
        if fetched is not None:
            rules, described = fetched, wanted

    routes = route_table.routes if route_table else ()
    nat_ids = {r.target_id for r in routes if r.target_kind is RouteTargetKind.NAT_GATEWAY}
    subnets = list(dict.fromkeys([subnet_id, *(n.subnet_id for n in nat_gateways
                                               if n.id in nat_ids and n.subnet_id),
                                  *(i.subnet_id for i in endpoint_enis if i.subnet_id)]))

    def fetch_acls() -> list[NetworkAcl]:
        found: list[NetworkAcl] = []
        for chunk in _chunks(subnets, _MAX_FILTER_VALUES):
            found += [network_acl_from_api(a) for a in _pages(
                ec2, "DescribeNetworkAcls", "NetworkAcls",
                Filters=[{"Name": "association.subnet-id", "Values": chunk}])]
        return found
    acls = _optional("network_acls", "DescribeNetworkAcls", fetch_acls, problems) or []

    bpa: BlockPublicAccess | None = None
    if any(r.target_kind in _PUBLIC_KINDS for r in routes):
        scopes = [vpc_id, subnet_id, *(n.subnet_id for n in nat_gateways
                                       if n.id in nat_ids and n.subnet_id)]
        bpa = _optional("block_public_access", "DescribeVpcBlockPublicAccessOptions",
                        lambda: _block_public_access(ec2, region, scopes), problems)
    return TrafficFilters(
        host_security_group_ids=groups, host_addresses=addresses,
        security_group_rules=tuple(rules), described_groups=tuple(described),
        network_acls=tuple(acls), block_public_access=bpa, problems=tuple(problems))


def _block_public_access(ec2: Any, region: str, scopes: Sequence[str]) -> BlockPublicAccess:
    """The region's BPA options and, when it is on, the exclusions of ``scopes`` (VPC, subnets)."""
    options = _call(ec2, "DescribeVpcBlockPublicAccessOptions").get(
        "VpcBlockPublicAccessOptions") or {}
    mode = str(options.get("InternetGatewayBlockMode") or "off")
    exclusions: list[BlockPublicAccessExclusion] = []
    if mode != "off":
        account = options.get("AwsAccountId")
        params: dict[str, Any] = {}
        if account:
            # Exclusion ARNs: arn:PARTITION:ec2:REGION:ACCOUNT:vpc/ID or subnet/ID.
            arns = [f"arn:{_partition(region)}:ec2:{region}:{account}:"
                    f"{'vpc' if s.startswith('vpc-') else 'subnet'}/{s}"
                    for s in dict.fromkeys(scopes)]
            params["Filters"] = [{"Name": "resource-arn", "Values": arns}]
        exclusions = [bpa_exclusion_from_api(e) for e in _pages(
            ec2, "DescribeVpcBlockPublicAccessExclusions", "VpcBlockPublicAccessExclusions",
            **params)]
    return BlockPublicAccess(
        mode=mode, state=str(options.get("State") or "default-state"),
        exclusions_allowed=options.get("ExclusionsAllowed"), managed_by=options.get("ManagedBy"),
        exclusions=tuple(exclusions))


def _partition(region: str) -> str:
    """The ARN partition of ``region``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _call(ec2: Any, operation: str, **params: Any) -> dict[str, Any]:
    """One call of an operation that is not paginated; errors become InventoryError."""
    try:
        return dict(operation_method(ec2, operation)(**params))
    except botocore_errors() as exc:
        raise inventory_error_from(exc, operation) from exc


def _chunks(values: list[str], size: int) -> list[list[str]]:
    """``values`` in consecutive slices of at most ``size``."""
    return [values[i:i + size] for i in range(0, len(values), size)]


# ---------------------------------------------------------------------------------------------
# API dicts -> model


def current_route_table(ec2: Any, vpc_id: str, subnet_id: str) -> RouteTable | None:
    """The route table ``subnet_id`` uses now: one DescribeRouteTables call (filter ``vpc-id``,
    as a refresh makes it), for the route check between refreshes."""
    return choose_route_table(_pages(ec2, "DescribeRouteTables", "RouteTables",
                                     Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]),
                              vpc_id, subnet_id)


def route_table_signature(table: RouteTable | None) -> tuple[Any, ...] | None:
    """What decides the subnet's routing, comparable between a cached and a fresh table: the
    table, how the subnet uses it, and each route's destination, target, origin and state
    (sorted: the API's order carries no meaning). Target kinds are left out: a refresh refines
    them from the endpoints (Gateway Load Balancer endpoints), which the check does not ask."""
    if table is None:
        return None
    return (table.id, table.association, tuple(sorted(
        (r.destination, r.target_id, r.origin.value, r.state) for r in table.routes)))


def choose_route_table(route_tables: Iterable[Mapping[str, Any]], vpc_id: str,
                       subnet_id: str) -> RouteTable | None:
    """The table explicitly associated with ``subnet_id``, else the VPC's main table, else None.

    A subnet without an explicit association uses the main route table (VPC user guide, "Subnet
    route tables": "If you don't explicitly associate a subnet with a particular route table, the
    subnet is implicitly associated with the main route table").
    """
    explicit = main = None
    for table in route_tables:
        for assoc in table.get("Associations") or []:
            state = (assoc.get("AssociationState") or {}).get("State", "associated")
            if state not in ("associated", "associating"):
                continue
            if assoc.get("SubnetId") == subnet_id and explicit is None:
                explicit = table
            if assoc.get("Main") and main is None:
                main = table
    chosen, association = (explicit, "explicit") if explicit else (main, "main")
    if chosen is None:
        logger.warning("VPC %s: no route table for subnet %s and no main table", vpc_id, subnet_id)
        return None
    routes = tuple(r for r in (route_from_api(x) for x in chosen.get("Routes") or []) if r)
    return RouteTable(id=str(chosen["RouteTableId"]), vpc_id=str(chosen.get("VpcId") or vpc_id),
                      association=association, routes=routes)


def route_from_api(route: Mapping[str, Any]) -> Route | None:
    """One DescribeRouteTables route as a model Route (None when it has no destination)."""
    destination = (route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
                   or route.get("DestinationPrefixListId"))
    if not destination:
        logger.debug("skipping route without destination: %s", dict(route))
        return None
    target_id, kind = route_target(route)
    # Origin: CreateRouteTable (the local route), CreateRoute (static, including endpoint-managed
    # routes) or EnableVgwRoutePropagation. The API does not say whether a propagated route came
    # from Direct Connect, a static VPN route or VPN BGP, so it stays generic PROPAGATED
    # (EC2 API reference, Route.Origin).
    origin = (RouteOrigin.PROPAGATED if route.get("Origin") == "EnableVgwRoutePropagation"
              else RouteOrigin.STATIC)
    # "blackhole" (the target is gone) is kept: such a route still wins the prefix match and
    # drops the traffic (VPC user guide, "Route table concepts").
    return Route(destination=str(destination), target_id=target_id, target_kind=kind,
                 origin=origin, state=str(route.get("State") or "active"))


# Fields of a Route that name its target, in the order they are checked (EC2 API reference,
# Route). InstanceId comes before NetworkInterfaceId: a route to an instance carries both, and
# it is an instance target.
_TARGET_FIELDS: tuple[tuple[str, RouteTargetKind], ...] = (
    ("EgressOnlyInternetGatewayId", RouteTargetKind.EGRESS_ONLY_INTERNET_GATEWAY),
    ("NatGatewayId", RouteTargetKind.NAT_GATEWAY),
    ("TransitGatewayId", RouteTargetKind.TRANSIT_GATEWAY),
    ("VpcPeeringConnectionId", RouteTargetKind.PEERING_CONNECTION),
    ("InstanceId", RouteTargetKind.INSTANCE),
    ("NetworkInterfaceId", RouteTargetKind.NETWORK_INTERFACE),
    ("LocalGatewayId", RouteTargetKind.LOCAL_GATEWAY),
    ("CarrierGatewayId", RouteTargetKind.CARRIER_GATEWAY),
    ("CoreNetworkArn", RouteTargetKind.CORE_NETWORK),
)


def route_target(route: Mapping[str, Any]) -> tuple[str, RouteTargetKind]:
    """The target id of a route and its kind, from GatewayId's prefix or the field that is set."""
    gateway = route.get("GatewayId")
    if gateway:
        gateway = str(gateway)
        if gateway == "local":
            return gateway, RouteTargetKind.LOCAL
        for prefix, kind in (("igw-", RouteTargetKind.INTERNET_GATEWAY),
                             ("vpce-", RouteTargetKind.GATEWAY_ENDPOINT),
                             ("vgw-", RouteTargetKind.VIRTUAL_PRIVATE_GATEWAY)):
            if gateway.startswith(prefix):
                return gateway, kind
        return gateway, RouteTargetKind.UNKNOWN
    for field_name, kind in _TARGET_FIELDS:
        value = route.get(field_name)
        if value:
            return str(value), kind
    return "", RouteTargetKind.UNKNOWN


def _refine_endpoint_routes(table: RouteTable, raw_endpoints: list[dict[str, Any]]) -> RouteTable:
    """Mark routes to Gateway Load Balancer endpoints as such.

    Both gateway endpoints and GWLB endpoints appear as ``GatewayId: vpce-…``; only the
    endpoint's type tells them apart, and DescribeVpcEndpoints (already called) has it.
    """
    gwlb = {e.get("VpcEndpointId") for e in raw_endpoints
            if e.get("VpcEndpointType") == "GatewayLoadBalancer"}
    if not gwlb or not any(r.target_id in gwlb for r in table.routes):
        return table
    routes = tuple(Route(r.destination, r.target_id, RouteTargetKind.GATEWAY_LOAD_BALANCER_ENDPOINT,
                         r.origin, r.state) if r.target_id in gwlb else r for r in table.routes)
    return RouteTable(table.id, table.vpc_id, table.association, routes)


def endpoint_from_api(endpoint: Mapping[str, Any]) -> VpcEndpoint:
    """One DescribeVpcEndpoints item as a model VpcEndpoint."""
    endpoint_type = str(endpoint.get("VpcEndpointType") or "")
    dns_options = endpoint.get("DnsOptions") or {}
    inbound_only = dns_options.get("PrivateDnsOnlyForInboundResolverEndpoint")
    names = []
    for entry in endpoint.get("DnsEntries") or []:
        name = str(entry.get("DnsName") or "").strip().lower().rstrip(".")
        if name and name not in names:
            names.append(name)
    return VpcEndpoint(
        id=str(endpoint["VpcEndpointId"]),
        type=endpoint_type,
        service_name=str(endpoint.get("ServiceName") or ""),
        state=str(endpoint.get("State") or "unknown"),
        vpc_id=str(endpoint.get("VpcId") or ""),
        route_table_ids=tuple(endpoint.get("RouteTableIds") or ()),
        network_interface_ids=tuple(endpoint.get("NetworkInterfaceIds") or ()),
        dns_names=tuple(names),
        # Private DNS exists only for interface endpoints (PrivateLink guide, "DNS hostnames");
        # some answers (moto's, for one) say True for gateway endpoints, which would mislead.
        private_dns_enabled=bool(endpoint.get("PrivateDnsEnabled")) and endpoint_type == "Interface",
        private_dns_only_for_inbound_resolver_endpoint=(
            None if inbound_only is None else bool(inbound_only)),
        ip_address_type=endpoint.get("IpAddressType"),
        policy_document=endpoint.get("PolicyDocument"),
        owner_id=endpoint.get("OwnerId"), service_region=endpoint.get("ServiceRegion"),
        dns_record_ip_type=dns_options.get("DnsRecordIpType"),
        security_group_ids=tuple(str(g["GroupId"]) for g in endpoint.get("Groups") or ()
                                 if g.get("GroupId")),
        subnet_ids=tuple(endpoint.get("SubnetIds") or ()))


def endpoint_id_of(eni: Mapping[str, Any]) -> str | None:
    """The vpce id an ENI belongs to, from AWS's description "VPC Endpoint Interface vpce-…".

    An endpoint ENI has InterfaceType "vpc_endpoint"; its id is only in the description. An ENI of
    that type whose description does not parse yields None (its type still says "endpoint").
    """
    match = _ENDPOINT_ENI_DESCRIPTION.match(str(eni.get("Description") or ""))
    if match:
        return match.group(1)
    if eni.get("InterfaceType") == "vpc_endpoint":
        logger.warning("ENI %s is an endpoint ENI but its description %r names no endpoint",
                       eni.get("NetworkInterfaceId"), eni.get("Description"))
    return None


def interface_from_api(eni: Mapping[str, Any], endpoint_id: str | None) -> NetworkInterface:
    """One DescribeNetworkInterfaces item as a model NetworkInterface."""
    addresses: list[str] = []
    for item in eni.get("PrivateIpAddresses") or []:
        if item.get("PrivateIpAddress"):
            addresses.append(str(item["PrivateIpAddress"]))
    if eni.get("PrivateIpAddress") and eni["PrivateIpAddress"] not in addresses:
        addresses.insert(0, str(eni["PrivateIpAddress"]))
    for item in eni.get("Ipv6Addresses") or []:
        if item.get("Ipv6Address"):
            addresses.append(str(item["Ipv6Address"]))
    return NetworkInterface(
        id=str(eni["NetworkInterfaceId"]), vpc_id=str(eni.get("VpcId") or ""),
        subnet_id=eni.get("SubnetId"), interface_type=str(eni.get("InterfaceType") or ""),
        description=str(eni.get("Description") or ""),
        addresses=tuple(dict.fromkeys(addresses)), endpoint_id=endpoint_id,
        security_group_ids=tuple(str(g["GroupId"]) for g in eni.get("Groups") or ()
                                 if g.get("GroupId")))


def security_group_rule_from_api(rule: Mapping[str, Any]) -> SecurityGroupRule:
    """One DescribeSecurityGroupRules item as a model SecurityGroupRule."""
    referenced = rule.get("ReferencedGroupInfo") or {}
    return SecurityGroupRule(
        group_id=str(rule.get("GroupId") or ""), rule_id=str(rule.get("SecurityGroupRuleId") or ""),
        egress=bool(rule.get("IsEgress")), protocol=str(rule.get("IpProtocol") or "-1").lower(),
        from_port=_int_or_none(rule.get("FromPort")), to_port=_int_or_none(rule.get("ToPort")),
        cidr=rule.get("CidrIpv4") or rule.get("CidrIpv6"),
        prefix_list_id=rule.get("PrefixListId"),
        referenced_group_id=referenced.get("GroupId"))


def network_acl_from_api(acl: Mapping[str, Any]) -> NetworkAcl:
    """One DescribeNetworkAcls item as a model NetworkAcl."""
    entries = []
    for entry in acl.get("Entries") or []:
        cidr = entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")
        if not cidr or entry.get("RuleNumber") is None:
            continue
        ports = entry.get("PortRange") or {}
        entries.append(NetworkAclEntry(
            rule_number=int(entry["RuleNumber"]), egress=bool(entry.get("Egress")),
            action=str(entry.get("RuleAction") or "deny").lower(),
            protocol=str(entry.get("Protocol") or "-1"), cidr=str(cidr),
            port_from=_int_or_none(ports.get("From")), port_to=_int_or_none(ports.get("To"))))
    return NetworkAcl(
        id=str(acl.get("NetworkAclId") or ""), vpc_id=str(acl.get("VpcId") or ""),
        subnet_ids=tuple(str(a["SubnetId"]) for a in acl.get("Associations") or ()
                         if a.get("SubnetId")),
        entries=tuple(entries), is_default=bool(acl.get("IsDefault")))


def bpa_exclusion_from_api(exclusion: Mapping[str, Any]) -> BlockPublicAccessExclusion:
    """One DescribeVpcBlockPublicAccessExclusions item as a model exclusion."""
    arn = str(exclusion.get("ResourceArn") or "")
    return BlockPublicAccessExclusion(
        id=str(exclusion.get("ExclusionId") or ""),
        mode=str(exclusion.get("InternetGatewayExclusionMode") or ""),
        resource_id=arn.rsplit("/", 1)[-1], state=str(exclusion.get("State") or ""))


def nat_gateway_from_api(nat: Mapping[str, Any]) -> NatGateway:
    """One DescribeNatGateways item as a model NatGateway."""
    addresses = nat.get("NatGatewayAddresses") or []
    return NatGateway(
        id=str(nat["NatGatewayId"]), subnet_id=nat.get("SubnetId"),
        private_addresses=tuple(str(a["PrivateIp"]) for a in addresses if a.get("PrivateIp")),
        public_addresses=tuple(str(a["PublicIp"]) for a in addresses if a.get("PublicIp")))


def _canonical(address: str) -> str:
    """The canonical text of an IP address (IPv6 compressed), or the input when it is not one."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def _int_or_none(value: Any) -> int | None:
    """``value`` as an int, or None."""
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# dict round trip (the cache's file format)


def inventory_to_dict(inventory: Inventory) -> dict[str, Any]:
    """JSON-ready form of ``inventory`` (:meth:`Inventory.to_dict`; endpoint policies left out)."""
    return inventory.to_dict()


def inventory_from_dict(d: Mapping[str, Any],
                        policy_documents: Mapping[str, str] | None = None) -> Inventory:
    """The inverse of :func:`inventory_to_dict`: nested types and enums restored.

    ``VpcEndpoint.to_dict`` leaves the policy document out; pass ``policy_documents`` (endpoint
    id -> document) to restore them. Raises KeyError/TypeError/ValueError on a malformed dict.
    """
    policies = policy_documents or {}

    def endpoint(e: Mapping[str, Any]) -> VpcEndpoint:
        return VpcEndpoint(
            id=str(e["id"]), type=str(e["type"]), service_name=str(e["service_name"]),
            state=str(e["state"]), vpc_id=str(e["vpc_id"]),
            route_table_ids=tuple(e.get("route_table_ids") or ()),
            network_interface_ids=tuple(e.get("network_interface_ids") or ()),
            dns_names=tuple(e.get("dns_names") or ()),
            private_dns_enabled=bool(e.get("private_dns_enabled", False)),
            private_dns_only_for_inbound_resolver_endpoint=e.get(
                "private_dns_only_for_inbound_resolver_endpoint"),
            ip_address_type=e.get("ip_address_type"),
            policy_document=policies.get(str(e["id"])), owner_id=e.get("owner_id"),
            service_region=e.get("service_region"),
            dns_record_ip_type=e.get("dns_record_ip_type"),
            security_group_ids=tuple(e.get("security_group_ids") or ()),
            subnet_ids=tuple(e.get("subnet_ids") or ()))

    table = d.get("route_table")
    route_table = None
    if table is not None:
        route_table = RouteTable(
            id=str(table["id"]), vpc_id=str(table["vpc_id"]),
            association=str(table["association"]),
            routes=tuple(Route(destination=str(r["destination"]), target_id=str(r["target"]),
                               target_kind=RouteTargetKind(r["kind"]),
                               origin=RouteOrigin(r.get("origin", RouteOrigin.STATIC.value)),
                               state=str(r.get("state", "active")))
                         for r in table["routes"]))
    return Inventory(
        region=str(d["region"]), vpc_id=str(d["vpc_id"]), subnet_id=str(d["subnet_id"]),
        route_table=route_table,
        prefix_lists=tuple(PrefixList(id=str(p["id"]), name=str(p["name"]),
                                      version=_int_or_none(p.get("version")),
                                      cidrs=tuple(str(c) for c in p["cidrs"]))
                           for p in d["prefix_lists"]),
        endpoints=tuple(endpoint(e) for e in d["endpoints"]),
        interfaces=tuple(NetworkInterface(
            id=str(i["id"]), vpc_id=str(i["vpc_id"]), subnet_id=i.get("subnet_id"),
            interface_type=str(i["interface_type"]), description=str(i.get("description", "")),
            addresses=tuple(str(a) for a in i["addresses"]), endpoint_id=i.get("endpoint_id"),
            security_group_ids=tuple(i.get("security_group_ids") or ()))
            for i in d["interfaces"]),
        nat_gateways=tuple(NatGateway(
            id=str(n["id"]), subnet_id=n.get("subnet_id"),
            private_addresses=tuple(n.get("private_addresses") or ()),
            public_addresses=tuple(n.get("public_addresses") or ()))
            for n in d.get("nat_gateways") or ()),
        fetched_at=float(d.get("fetched_at") or 0.0),
        s3_prefix_list_id=d.get("s3_prefix_list_id"),
        traffic_filters=_filters_from_dict(d.get("traffic_filters")),
        remote_endpoints=tuple(endpoint(e) for e in d.get("remote_endpoints") or ()),
        non_s3_endpoint_ids=tuple(str(i) for i in d.get("non_s3_endpoint_ids") or ()))


def _filters_from_dict(d: Mapping[str, Any] | None) -> TrafficFilters | None:
    """TrafficFilters from :meth:`TrafficFilters.to_dict`; None for a cache written without."""
    if d is None:
        return None
    groups = d.get("host_security_group_ids")
    bpa = d.get("block_public_access")
    return TrafficFilters(
        host_security_group_ids=tuple(groups) if groups is not None else None,
        host_addresses=tuple(d.get("host_addresses") or ()),
        security_group_rules=tuple(SecurityGroupRule(
            group_id=str(r["group_id"]), rule_id=str(r["rule_id"]), egress=bool(r["egress"]),
            protocol=str(r["protocol"]), from_port=_int_or_none(r.get("from_port")),
            to_port=_int_or_none(r.get("to_port")), cidr=r.get("cidr"),
            prefix_list_id=r.get("prefix_list_id"),
            referenced_group_id=r.get("referenced_group_id"))
            for r in d.get("security_group_rules") or ()),
        described_groups=tuple(d.get("described_groups") or ()),
        network_acls=tuple(NetworkAcl(
            id=str(a["id"]), vpc_id=str(a["vpc_id"]), subnet_ids=tuple(a["subnet_ids"]),
            entries=tuple(NetworkAclEntry(
                rule_number=int(e["rule_number"]), egress=bool(e["egress"]),
                action=str(e["action"]), protocol=str(e["protocol"]), cidr=str(e["cidr"]),
                port_from=_int_or_none(e.get("port_from")), port_to=_int_or_none(e.get("port_to")))
                for e in a["entries"]), is_default=bool(a.get("is_default")))
            for a in d.get("network_acls") or ()),
        block_public_access=None if bpa is None else BlockPublicAccess(
            mode=str(bpa["mode"]), state=str(bpa.get("state") or "default-state"),
            exclusions_allowed=bpa.get("exclusions_allowed"), managed_by=bpa.get("managed_by"),
            exclusions=tuple(BlockPublicAccessExclusion(
                id=str(e["id"]), mode=str(e["mode"]), resource_id=str(e["resource_id"]),
                state=str(e["state"])) for e in bpa.get("exclusions") or ())),
        problems=tuple((str(f), str(w)) for f, w in d.get("problems") or ()))
