"""THE one place where state that moto lacks is set through moto's backend objects, and where
moto learns the calls it does not implement.

Everything moto does right is done through the EC2 API (``s3_route_agent.devenv.localenv.world``); the functions
here fill the gaps listed in /work/shared/reference/aws-facts.md ("moto (5.2.5) in server mode"),
and these, found for issue 10: the default security group lacks its self-referencing inbound
rule, a custom network ACL lacks its ``*`` rules, an interface endpoint lists no security
groups, and VPC Block Public Access has no API at all (:func:`install` adds
DescribeVpcBlockPublicAccessOptions and DescribeVpcBlockPublicAccessExclusions to moto's EC2
responses, and the ``vpc-endpoint-id`` filter of DescribeVpcEndpoints, which moto answers
with a 500; :func:`set_block_public_access` and :func:`add_block_public_access_exclusion` set
their state).
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
    backend = ec2_backend(region, account_id)
    eni = backend.get_network_interface(eni_id)
    _set_eni_address(eni, ip)
    eni.interface_type = "vpc_endpoint"
    eni.description = f"VPC Endpoint Interface {endpoint_id}"
    eni.requester_managed = True
    # The endpoint's security groups are its ENIs' (CreateVpcEndpoint SecurityGroupIds; without
    # them AWS uses the VPC's default group and lists it as the endpoint's Groups). moto keeps
    # the endpoint's list empty and gives the ENI the default group.
    endpoint = backend.vpc_end_points[endpoint_id]
    if endpoint.security_group_ids:
        eni._group_set = [backend.get_security_group_from_id(g)
                          for g in endpoint.security_group_ids]
    else:
        endpoint.security_group_ids = [g.id for g in eni._group_set]
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


# ---------------------------------------------------------------------------------------------
# Security groups and network ACLs: what moto 5.2.5 creates differently from AWS


def add_default_security_group_ingress(vpc_id: str, region: str,
                                       account_id: str = ACCOUNT_ID) -> str:
    """Give the VPC's default security group the inbound rule AWS creates with it; returns its id.

    AWS's default security group allows all inbound traffic from resources in the same group and
    all outbound traffic (VPC user guide, "Default security groups for your VPCs",
    https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html); moto 5.2.5
    creates only the outbound rule. Without the inbound one, an interface endpoint in the
    default group would refuse the hosts of its own VPC. Idempotent.
    """
    backend = ec2_backend(region, account_id)
    group = backend.get_security_group_from_name("default", vpc_id=vpc_id)
    if not any(r.source_group.get("GroupId") == group.id for r in group.ingress_rules):
        backend.authorize_security_group_ingress(
            group.id, "-1", None, None, [], source_groups=[{"GroupId": group.id,
                                                            "UserId": account_id}],
            vpc_id=vpc_id)
        logger.debug("patched the self-referencing ingress rule into %s", group.id)
    return str(group.id)


def add_network_acl_default_rules(network_acl_id: str, region: str,
                                  account_id: str = ACCOUNT_ID) -> None:
    """Add the ``*`` rules (number 32767, deny, both directions) AWS puts in every network ACL.

    A custom network ACL denies everything until rules are added (VPC user guide, "Custom network
    ACLs for your VPC", https://docs.aws.amazon.com/vpc/latest/userguide/custom-network-acl.html);
    DescribeNetworkAcls shows the ``*`` rule as rule number 32767. moto 5.2.5 creates a custom
    ACL with no entry at all. Idempotent.
    """
    backend = ec2_backend(region, account_id)
    acl = backend.get_network_acl(network_acl_id)
    for egress in (True, False):
        if any(e.egress == egress and int(e.rule_number) == 32767
               for e in acl.network_acl_entries):
            continue
        backend.create_network_acl_entry(network_acl_id, 32767, "-1", "deny", egress,
                                         "0.0.0.0/0", None, None, None, None, None)


# ---------------------------------------------------------------------------------------------
# VPC Block Public Access: no API in moto 5.2.5, served here from state kept on the backend
#
# The options and exclusions follow the EC2 API reference (VpcBlockPublicAccessOptions,
# VpcBlockPublicAccessExclusion,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_VpcBlockPublicAccessOptions.html):
# an account and region has one mode; exclusions name a VPC or subnet by ARN.

_BPA_ATTRIBUTE = "s3_route_agent_block_public_access"


def _bpa_state(backend: Any) -> dict[str, Any]:
    state = getattr(backend, _BPA_ATTRIBUTE, None)
    if state is None:
        state = {"options": {"InternetGatewayBlockMode": "off", "State": "default-state",
                             "ExclusionsAllowed": "allowed", "ManagedBy": "account"},
                 "exclusions": {}}
        setattr(backend, _BPA_ATTRIBUTE, state)
    return state


def set_block_public_access(region: str, mode: str, account_id: str = ACCOUNT_ID, *,
                            state: str = "update-complete", exclusions_allowed: str = "allowed",
                            managed_by: str = "account") -> None:
    """Set the account's VPC Block Public Access mode in ``region`` (``off`` resets it)."""
    if mode not in ("off", "block-bidirectional", "block-ingress"):
        raise ValueError(f"unknown Block Public Access mode {mode!r}")
    options = _bpa_state(ec2_backend(region, account_id))["options"]
    options.update({"InternetGatewayBlockMode": mode, "State": state,
                    "ExclusionsAllowed": exclusions_allowed, "ManagedBy": managed_by})
    logger.debug("patched Block Public Access of %s/%s to %s", account_id, region, mode)


def add_block_public_access_exclusion(resource_id: str, mode: str, region: str,
                                      account_id: str = ACCOUNT_ID,
                                      state: str = "create-complete") -> str:
    """Exclude a VPC or subnet (``vpc-…`` / ``subnet-…``) from Block Public Access; returns the
    exclusion id (``exclusion-…``)."""
    if mode not in ("allow-bidirectional", "allow-egress"):
        raise ValueError(f"unknown exclusion mode {mode!r}")
    exclusions = _bpa_state(ec2_backend(region, account_id))["exclusions"]
    exclusion_id = f"exclusion-{len(exclusions) + 1:017x}"
    kind = "vpc" if resource_id.startswith("vpc-") else "subnet"
    exclusions[exclusion_id] = {
        "ExclusionId": exclusion_id, "InternetGatewayExclusionMode": mode,
        "ResourceArn": f"arn:aws:ec2:{region}:{account_id}:{kind}/{resource_id}", "State": state}
    return exclusion_id


def clear_block_public_access(region: str, account_id: str = ACCOUNT_ID) -> None:
    """Back to the default: mode off, no exclusion."""
    backend = ec2_backend(region, account_id)
    if hasattr(backend, _BPA_ATTRIBUTE):
        delattr(backend, _BPA_ATTRIBUTE)


def _describe_vpc_block_public_access_options(self: Any) -> Any:
    """EC2 DescribeVpcBlockPublicAccessOptions, answered from the backend's state."""
    from moto.core.responses import ActionResult

    options = dict(_bpa_state(self.ec2_backend)["options"])
    options.update({"AwsAccountId": self.current_account, "AwsRegion": self.region})
    return ActionResult({"VpcBlockPublicAccessOptions": options})


def _describe_vpc_block_public_access_exclusions(self: Any) -> Any:
    """EC2 DescribeVpcBlockPublicAccessExclusions with ExclusionIds and the resource-arn, state
    and internet-gateway-exclusion-mode filters."""
    from moto.core.responses import ActionResult

    wanted_ids = self._get_param("ExclusionIds", [])
    filters = self._filters_from_querystring()
    fields = {"resource-arn": "ResourceArn", "state": "State",
              "internet-gateway-exclusion-mode": "InternetGatewayExclusionMode"}
    found = []
    for exclusion in _bpa_state(self.ec2_backend)["exclusions"].values():
        if wanted_ids and exclusion["ExclusionId"] not in wanted_ids:
            continue
        if all(exclusion.get(fields[name]) in values for name, values in filters.items()
               if name in fields):
            found.append(dict(exclusion))
    return ActionResult({"VpcBlockPublicAccessExclusions": found})


def _endpoint_filter_value(original: Any) -> Any:
    """VPCEndPoint.get_filter_value, plus the ``vpc-endpoint-id`` filter AWS supports on
    DescribeVpcEndpoints (EC2 API reference, DescribeVpcEndpoints: Filters) and moto 5.2.5
    answers with a 500."""
    def get_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "vpc-endpoint-id":
            return self.id
        return original(self, filter_name, method_name)
    get_filter_value.s3_route_agent_patch = True  # type: ignore[attr-defined]
    return get_filter_value


def install() -> None:
    """Teach moto's EC2 the calls and filters it lacks (Block Public Access, DescribeVpcEndpoints'
    ``vpc-endpoint-id`` filter). Idempotent; affects the moto servers of this process only."""
    from moto.ec2.models.vpcs import VPCEndPoint
    from moto.ec2.responses import EC2Response

    if not getattr(VPCEndPoint.get_filter_value, "s3_route_agent_patch", False):
        VPCEndPoint.get_filter_value = _endpoint_filter_value(  # type: ignore[method-assign]
            VPCEndPoint.get_filter_value)

    EC2Response.describe_vpc_block_public_access_options = (  # type: ignore[attr-defined]
        _describe_vpc_block_public_access_options)
    EC2Response.describe_vpc_block_public_access_exclusions = (  # type: ignore[attr-defined]
        _describe_vpc_block_public_access_exclusions)
