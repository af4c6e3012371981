"""EC2 inventory: the subnet's route table, the S3 prefix list, the VPC's S3 endpoints and ENIs.

One run makes a small, fixed number of filtered, read-only EC2 calls (the request token bucket of
each Describe API is shared by every host of the account and region — EC2 API reference, "Request
throttling for the Amazon EC2 API"):

========================== =====================================================================
DescribeRouteTables        1 (filter ``vpc-id``)
DescribeManagedPrefixLists 1 (filter ``prefix-list-name`` = ``com.amazonaws.REGION.s3``)
DescribeVpcEndpoints       1 (filter ``vpc-id``; more only when the answer is paginated)
GetManagedPrefixListEntries one per prefix list: the S3 list plus any other list the route table
                           references — normally just the S3 one
DescribeNetworkInterfaces  1 for the S3 interface endpoints' ENIs (skipped when there are none),
                           plus 1 to look up private addresses that no such ENI holds
DescribeNatGateways        1 (filters ``vpc-id``, ``state=available``)
========================== =====================================================================

IAM: ``ec2:`` + each API name above, on ``Resource: *``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from typing import Any, Callable, Iterable, Mapping

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from s3_route_agent.errors import inventory_error_from
from s3_route_agent.engine.model import (
    Inventory,
    NatGateway,
    NetworkInterface,
    PrefixList,
    Route,
    RouteOrigin,
    RouteTable,
    RouteTargetKind,
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
    """Endpoint service names that carry S3 traffic from a VPC in ``region``.

    ``com.amazonaws.REGION.s3`` (gateway and interface endpoints), the multi-region access point
    service ``com.amazonaws.s3-global.accesspoint`` (S3 user guide, "Configuring a Multi-Region
    Access Point for use with AWS PrivateLink") and S3 Express One Zone's
    ``com.amazonaws.REGION.s3express``
    (S3 user guide, "Networking for directory buckets").
    """
    return frozenset({f"com.amazonaws.{region}.s3", "com.amazonaws.s3-global.accesspoint",
                      f"com.amazonaws.{region}.s3express"})


def s3_prefix_list_name(region: str) -> str:
    """The AWS-managed prefix list of S3 in ``region`` (VPC user guide, "AWS-managed prefix lists")."""
    return f"com.amazonaws.{region}.s3"


def collect_inventory(ec2: Any, region: str, vpc_id: str, subnet_id: str,
                      private_addresses: Iterable[str] = (),
                      clock: Callable[[], float] = time.time,
                      previous: Inventory | None = None) -> Inventory:
    """Fetch what EC2 says about ``subnet_id``'s routing and the VPC's S3 endpoints.

    ``ec2`` is a boto3 EC2 client for ``region``. ``private_addresses`` are addresses the host's
    S3 names resolved to; any of them that no S3 endpoint ENI of this VPC holds is looked up by
    address (it may be an endpoint ENI in another VPC, reached over a transit gateway or
    peering). Raises :class:`s3_route_agent.errors.InventoryError` when an EC2 call fails.

    ``previous`` (the cached inventory being refreshed) saves calls on a refresh: the S3 prefix
    list's entries are fetched only when its version changed, and the endpoint ENIs only when the
    set of endpoint ENI ids changed.
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
    services = s3_service_names(region)
    endpoints = tuple(endpoint_from_api(e) for e in raw_endpoints
                      if e.get("ServiceName") in services)

    prefix_lists = _prefix_lists(ec2, s3_list, route_table, previous)

    interfaces = _endpoint_interfaces(ec2, endpoints, previous)
    held = {_canonical(a) for i in interfaces for a in i.addresses}
    known = {i.id for i in interfaces}
    interfaces += tuple(i for i in _interfaces_by_address(ec2, private_addresses, held)
                        if i.id not in known)

    nat_gateways = tuple(nat_gateway_from_api(n) for n in _pages(
        ec2, "DescribeNatGateways", "NatGateways",
        Filter=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available"]}]))

    inventory = Inventory(
        region=region, vpc_id=vpc_id, subnet_id=subnet_id, route_table=route_table,
        prefix_lists=prefix_lists, endpoints=endpoints, interfaces=interfaces,
        nat_gateways=nat_gateways, fetched_at=fetched_at,
        s3_prefix_list_id=s3_list.get("PrefixListId") if s3_list else None)
    logger.info("inventory of %s/%s: route table %s (%s), %d S3 endpoint(s), %d ENI(s), "
                "%d NAT gateway(s)", vpc_id, subnet_id,
                route_table.id if route_table else None,
                route_table.association if route_table else "none",
                len(endpoints), len(interfaces), len(nat_gateways))
    return inventory


# ---------------------------------------------------------------------------------------------
# EC2 calls


def _pages(ec2: Any, operation: str, result_key: str, **params: Any) -> list[dict[str, Any]]:
    """All items of ``operation``'s ``result_key``, following NextToken; errors become InventoryError.

    No MaxResults is sent, so a normal answer is one page and one call.
    """
    method = getattr(ec2, xform_name(operation))
    items: list[dict[str, Any]] = []
    token: str | None = None
    seen: set[str] = set()
    for _ in range(_MAX_PAGES):
        kwargs = dict(params)
        if token:
            kwargs["NextToken"] = token
        try:
            response = method(**kwargs)
        except (BotoCoreError, ClientError) as exc:
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
                  previous: Inventory | None = None) -> tuple[PrefixList, ...]:
    """Entries of the S3 prefix list and of every other list the route table references.

    One GetManagedPrefixListEntries call per list; normally the route table references only the
    S3 list (through the gateway endpoint's route), so this is normally one call.
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
    out = []
    for list_id, (name, version) in wanted.items():
        known = previous.prefix_list(list_id) if previous else None
        if known is not None and version is not None and known.version == version:
            # Same version, same entries (a managed prefix list's version increases with every
            # change: VPC user guide, "Managed prefix lists"): no GetManagedPrefixListEntries.
            out.append(PrefixList(id=list_id, name=name, version=version, cidrs=known.cidrs))
            continue
        entries = _pages(ec2, "GetManagedPrefixListEntries", "Entries", PrefixListId=list_id)
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
    if previous is not None:
        known = {i.id: i for i in previous.interfaces if i.id in owner}
        if set(known) == set(owner):
            return tuple(NetworkInterface(i.id, i.vpc_id, i.subnet_id, i.interface_type,
                                          i.description, i.addresses, owner[i.id])
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


def _chunks(values: list[str], size: int) -> list[list[str]]:
    """``values`` in consecutive slices of at most ``size``."""
    return [values[i:i + size] for i in range(0, len(values), size)]


# ---------------------------------------------------------------------------------------------
# API dicts -> model


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
        policy_document=endpoint.get("PolicyDocument"))


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
        addresses=tuple(dict.fromkeys(addresses)), endpoint_id=endpoint_id)


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
        endpoints=tuple(VpcEndpoint(
            id=str(e["id"]), type=str(e["type"]), service_name=str(e["service_name"]),
            state=str(e["state"]), vpc_id=str(e["vpc_id"]),
            route_table_ids=tuple(e.get("route_table_ids") or ()),
            network_interface_ids=tuple(e.get("network_interface_ids") or ()),
            dns_names=tuple(e.get("dns_names") or ()),
            private_dns_enabled=bool(e.get("private_dns_enabled", False)),
            private_dns_only_for_inbound_resolver_endpoint=e.get(
                "private_dns_only_for_inbound_resolver_endpoint"),
            ip_address_type=e.get("ip_address_type"),
            policy_document=policies.get(str(e["id"])))
            for e in d["endpoints"]),
        interfaces=tuple(NetworkInterface(
            id=str(i["id"]), vpc_id=str(i["vpc_id"]), subnet_id=i.get("subnet_id"),
            interface_type=str(i["interface_type"]), description=str(i.get("description", "")),
            addresses=tuple(str(a) for a in i["addresses"]), endpoint_id=i.get("endpoint_id"))
            for i in d["interfaces"]),
        nat_gateways=tuple(NatGateway(
            id=str(n["id"]), subnet_id=n.get("subnet_id"),
            private_addresses=tuple(n.get("private_addresses") or ()),
            public_addresses=tuple(n.get("public_addresses") or ()))
            for n in d.get("nat_gateways") or ()),
        fetched_at=float(d.get("fetched_at") or 0.0),
        s3_prefix_list_id=d.get("s3_prefix_list_id"))
