"""THE one place where state that moto lacks is set through moto's backend objects.

Everything moto does right is done through the EC2 API (``s3_route_agent.devenv.localenv.world``); the functions
here fill the gaps listed in /work/shared/reference/aws-facts.md ("moto (5.2.5) in server mode").
They reach into ``moto.backends.get_backend("ec2")[ACCOUNT][REGION]``, which works only in the
same process as the ``moto.server.ThreadedMotoServer`` that serves the API (a thread sharing the
process's backend state), and only for moto 5.x attribute names — pinned by the tests that use
this world.

Every function takes the moto account the world lives in (default: moto's default account;
``s3_route_agent.devenv.localenv.world`` can seed isolated worlds in other accounts of the same server).

Nothing here talks to a network; every address set here is a documentation or lab range.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

logger = logging.getLogger(__name__)

# moto's default account: the one a request signed with the fake "testing" key lands in.
ACCOUNT_ID = "123456789012"


def ec2_backend(region: str, account_id: str = ACCOUNT_ID) -> Any:
    """moto's in-process EC2 backend for ``account_id`` / ``region`` (created on first use)."""
    from moto.backends import get_backend  # moto is a test/demo dependency only

    return get_backend("ec2")[account_id][region]


def set_nat_gateway_private_ip(nat_gateway_id: str, ip: str, region: str,
                               account_id: str = ACCOUNT_ID) -> None:
    """Give a NAT gateway (and its ENI) the private address ``ip``.

    moto picks a random 10.x address for a NAT gateway, usually outside its subnet, and
    CreateNatGateway's PrivateIpAddress parameter is ignored; AWS takes an address from the
    subnet (VPC user guide, "NAT gateway basics"). The world needs a fixed one (10.0.0.5) so the
    demo and tests can name it.
    """
    backend = ec2_backend(region, account_id)
    nat = backend.nat_gateways[nat_gateway_id]
    _set_eni_address(nat._eni, ip)
    nat.private_ip = ip
    for address in nat.address_set:
        address["privateIp"] = ip
    logger.debug("patched NAT gateway %s private IP to %s", nat_gateway_id, ip)


def make_endpoint_eni(eni_id: str, endpoint_id: str, ip: str, region: str,
                      account_id: str = ACCOUNT_ID) -> None:
    """Make an interface endpoint's ENI look as it does on AWS.

    moto gives it a random 10.x address outside the subnet, InterfaceType "interface" and an
    empty Description. AWS: an address from the endpoint's subnet, InterfaceType "vpc_endpoint",
    RequesterManaged true and Description "VPC Endpoint Interface vpce-…" (PrivateLink guide,
    "Interface endpoint properties"; EC2 API reference, NetworkInterface.InterfaceType). The
    description is how the agent learns which endpoint owns an ENI found by address.
    """
    eni = ec2_backend(region, account_id).get_network_interface(eni_id)
    _set_eni_address(eni, ip)
    eni.interface_type = "vpc_endpoint"
    eni.description = f"VPC Endpoint Interface {endpoint_id}"
    eni.requester_managed = True
    logger.debug("patched endpoint ENI %s: %s, %s", eni_id, ip, eni.description)


def set_endpoint_dns(endpoint_id: str, dns_entries: Sequence[tuple[str, str]], region: str,
                     dns_options: dict[str, Any] | None = None,
                     ip_address_type: str | None = "ipv4",
                     account_id: str = ACCOUNT_ID) -> None:
    """Set an endpoint's DnsEntries ((name, hosted zone id) pairs), DnsOptions and IpAddressType.

    moto's DnsEntries are malformed ("vpce-…-xxxx.com.amazonaws.eu-west-1.s3"; AWS:
    "*.vpce-…-xxxx.s3.eu-west-1.vpce.amazonaws.com" plus one name per Availability Zone —
    S3 user guide, "AWS PrivateLink for Amazon S3") and it has no DnsOptions or IpAddressType.
    """
    endpoint = ec2_backend(region, account_id).vpc_end_points[endpoint_id]
    endpoint.dns_entries = [{"dns_name": name, "hosted_zone_id": zone} for name, zone in dns_entries]
    if dns_options is not None:
        endpoint.dns_options = dict(dns_options)
    endpoint.ip_address_type = ip_address_type
    logger.debug("patched DNS of %s: %s", endpoint_id, [n for n, _ in dns_entries])


def hosted_zone_id_of(endpoint_id: str, region: str, account_id: str = ACCOUNT_ID) -> str:
    """The hosted zone id moto invented for an interface endpoint (kept when names are patched)."""
    entries = ec2_backend(region, account_id).vpc_end_points[endpoint_id].dns_entries or []
    for entry in entries:
        zone = entry.get("hosted_zone_id") if isinstance(entry, dict) else None
        if zone:
            return str(zone)
    return "Z7HUB22UULQXV"


def set_aws_prefix_list_cidrs(region: str, cidrs: Sequence[str], name: str | None = None,
                              account_id: str = ACCOUNT_ID) -> int:
    """Give the AWS-managed prefix list ``name`` (default: the region's S3 list) these CIDRs.

    moto gives the S3 list of every region the same CIDRs (52.216.0.0/15, 3.5.0.0/19,
    54.231.0.0/16) and no Version, and ModifyManagedPrefixList on an AWS-owned list answers 500
    and can null its name — so the entries are replaced here, as a new version (AWS bumps the
    version whenever the entries change: VPC user guide, "Managed prefix lists"). Idempotent:
    when the latest entries already are ``cidrs`` nothing changes. Returns the version.
    """
    name = name or f"com.amazonaws.{region}.s3"
    backend = ec2_backend(region, account_id)
    matches = [p for p in backend.managed_prefix_lists.values() if p.prefix_list_name == name]
    if not matches:
        raise LookupError(f"moto has no prefix list named {name} in {region}")
    plist = matches[0]
    wanted = [{"Cidr": c} for c in cidrs]
    latest = list(plist.entries.values())[-1] if plist.entries else []
    if [e.get("Cidr") for e in latest] == list(cidrs) and plist.version:
        return int(plist.version)
    version = max([int(v) for v in plist.entries] + [int(plist.version or 0)]) + 1
    plist.entries[version] = wanted
    plist.version = version
    logger.debug("patched prefix list %s (%s) to %s, version %d", plist.id, name, list(cidrs),
                 version)
    return version


def add_gateway_endpoint_route(route_table_id: str, endpoint_id: str, region: str,
                               account_id: str = ACCOUNT_ID) -> None:
    """Add the prefix-list route a gateway endpoint puts in a route table it is associated with.

    AWS adds it on ModifyVpcEndpoint AddRouteTableIds (VPC user guide, "Gateway endpoints":
    routing); moto only records the table id and adds no route. CreateRoute cannot stand in:
    AWS refuses a route to a gateway endpoint made by hand.
    """
    backend = ec2_backend(region, account_id)
    endpoint = backend.vpc_end_points[endpoint_id]
    prefix_list_id = endpoint.destination_prefix_list_id
    if not prefix_list_id:
        raise LookupError(f"{endpoint_id} has no prefix list (not a gateway endpoint?)")
    route_table = backend.get_route_table(route_table_id)
    if any(getattr(r, "destination_prefix_list_id", None) == prefix_list_id
           for r in route_table.routes):
        return
    backend.create_route(route_table_id, None, gateway_id=endpoint_id,
                         destination_prefix_list_id=prefix_list_id)
    logger.debug("patched route %s -> %s into %s", prefix_list_id, endpoint_id, route_table_id)


def _set_eni_address(eni: Any, ip: str) -> None:
    """Make ``ip`` the ENI's only private IPv4 address."""
    eni.private_ip_address = ip
    eni.private_ip_addresses = [{"Primary": True, "PrivateIpAddress": ip}]
    if getattr(eni, "private_dns_name", None):
        region = eni.ec2_backend.region_name
        # AWS's private DNS name for an address in eu-west-1 etc. (ip-10-0-2-50.eu-west-1.compute.internal).
        eni.private_dns_name = f"ip-{ip.replace('.', '-')}.{region}.compute.internal"
        eni.private_ip_addresses[0]["PrivateDnsName"] = eni.private_dns_name
