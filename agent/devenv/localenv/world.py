"""The local world: one VPC in eu-west-1 seeded into a moto server on 127.0.0.1.

Shared by the tests and the README demo. Region eu-west-1 is chosen so that the legacy global
name ``s3.amazonaws.com`` (which resolves to us-east-1) is *not* covered by the VPC's gateway
endpoint: a gateway endpoint covers only its own region's S3 (VPC user guide, "Gateway
endpoints for Amazon S3").

Layout (every address is in an RFC 1918 lab range or an RFC 5737 documentation range; nothing
is ever sent to any of them — the agent only reasons about them)::

    VPC 10.0.0.0/16
      public    10.0.0.0/24  NAT gateway 10.0.0.5 (EIP 203.0.113.200); table: 0.0.0.0/0 -> IGW
      app       10.0.1.0/24  the agent's instance 10.0.1.10; table (explicit association):
                             local, 0.0.0.0/0 -> NAT, pl-<S3 eu-west-1> -> gateway endpoint
      endpoints 10.0.2.0/24  S3 interface endpoint ENI 10.0.2.50; main table (local only)
    S3 prefix lists: eu-west-1 198.51.100.0/25, us-east-1 203.0.113.0/25

Everything moto models correctly is created through the EC2 API with boto3; the rest is set by
``s3_route_agent.devenv.localenv.moto_patches`` (so :func:`seed_world` must run in the process that runs the
``ThreadedMotoServer`` — :func:`start_moto_server` starts one). A world can be seeded into
another moto account of the same server to keep it apart from the shared one
(:func:`use_moto_account`).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import string
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from s3_route_agent.devenv.localenv import moto_patches

logger = logging.getLogger(__name__)

REGION = "eu-west-1"
AVAILABILITY_ZONE = "eu-west-1a"
ACCOUNT_ID = moto_patches.ACCOUNT_ID

VPC_CIDR = "10.0.0.0/16"
PUBLIC_SUBNET_CIDR = "10.0.0.0/24"
APP_SUBNET_CIDR = "10.0.1.0/24"
ENDPOINT_SUBNET_CIDR = "10.0.2.0/24"
HOST_IP = "10.0.1.10"
NAT_PRIVATE_IP = "10.0.0.5"
NAT_PUBLIC_IP = "203.0.113.200"
INTERFACE_ENDPOINT_IP = "10.0.2.50"

# The hub ("shared services") VPC whose S3 interface endpoint other VPCs reach over a transit
# gateway (PrivateLink guide, "Access an AWS service through a centralized interface endpoint").
HUB_VPC_CIDR = "10.1.0.0/16"
HUB_WORKLOAD_SUBNET_CIDR = "10.1.1.0/24"
HUB_ENDPOINT_SUBNET_CIDR = "10.1.2.0/24"
HUB_INTERFACE_ENDPOINT_IP = "10.1.2.60"
HUB_EC2_ENDPOINT_IP = "10.1.2.61"

S3_SERVICE = f"com.amazonaws.{REGION}.s3"
EC2_SERVICE = f"com.amazonaws.{REGION}.ec2"
# S3's address ranges in this world (the same as in ip-ranges.json beside this file).
S3_PREFIX_LIST_CIDRS: dict[str, tuple[str, ...]] = {
    "eu-west-1": ("198.51.100.0/25",),
    "us-east-1": ("203.0.113.0/25",),
}
IP_RANGES_PATH = Path(__file__).with_name("ip-ranges.json")

# An AMI id from moto's bundled list (ubuntu trusty); moto does not boot anything.
_AMI_ID = "ami-1e749f67"
_FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class WorldIds:
    """Every id (and fixed address) of a seeded world."""

    region: str
    account_id: str
    availability_zone: str
    vpc_id: str
    app_subnet_id: str
    endpoint_subnet_id: str
    public_subnet_id: str
    main_route_table_id: str
    app_route_table_id: str
    public_route_table_id: str
    internet_gateway_id: str
    nat_gateway_id: str
    nat_private_ip: str
    nat_public_ip: str
    eip_allocation_id: str
    gateway_endpoint_id: str
    interface_endpoint_id: str
    interface_endpoint_eni_id: str
    interface_endpoint_ip: str
    interface_endpoint_dns_names: tuple[str, ...]
    private_dns: bool
    instance_id: str
    instance_ip: str
    instance_mac: str
    instance_eni_id: str
    s3_prefix_list_id: str
    s3_prefix_list_version: int
    us_east_1_s3_prefix_list_id: str
    default_security_group_id: str       # the VPC's default group: the instance's and the ENI's

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["interface_endpoint_dns_names"] = list(self.interface_endpoint_dns_names)
        return out


@dataclass(frozen=True)
class HubIds:
    """Ids of the hub VPC seeded by :func:`seed_hub_vpc`."""

    account_id: str
    vpc_id: str
    workload_subnet_id: str            # no explicit association: uses the main table
    endpoint_subnet_id: str
    main_route_table_id: str
    interface_endpoint_id: str         # com.amazonaws.eu-west-1.s3
    interface_endpoint_eni_id: str
    interface_endpoint_ip: str
    interface_endpoint_dns_names: tuple[str, ...]
    ec2_endpoint_id: str               # com.amazonaws.eu-west-1.ec2: not S3, filtered out
    ec2_endpoint_eni_id: str
    ec2_endpoint_ip: str
    transit_gateway_id: str | None     # set when the hub was connected to a world


class MotoServer:
    """A running ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and its endpoint URL."""

    def __init__(self, server: Any) -> None:
        """Wrap a started ThreadedMotoServer."""
        self._server = server
        host, port = server.get_host_and_port()
        self.host: str = host
        self.port: int = int(port)
        self.endpoint_url: str = f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving (the backend state stays in the process until moto resets it)."""
        self._server.stop()


def start_moto_server() -> MotoServer:
    """Start moto on 127.0.0.1 on a free port, without request logging on stderr."""
    from moto.server import ThreadedMotoServer  # moto is a test/demo dependency only

    # werkzeug logs one line per request at INFO (and adds a stderr handler when the logger has
    # no level); WARNING keeps errors and drops the noise.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_patches.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    handle = MotoServer(server)
    logger.info("moto server on %s", handle.endpoint_url)
    return handle


def local_ec2_client(endpoint_url: str, region: str = REGION,
                     account_id: str = ACCOUNT_ID) -> Any:
    """An EC2 client with fake credentials for the local moto server (refuses other hosts)."""
    _require_loopback(endpoint_url)
    session = boto3.session.Session(region_name=region, **_FAKE_CREDENTIALS)
    return use_moto_account(session.client("ec2", endpoint_url=endpoint_url), account_id)


def ensure_bucket(endpoint_url: str, bucket: str, region: str = REGION) -> None:
    """Create ``bucket`` in ``region`` on the local moto server unless this account has it.

    moto's S3 state is shared by every server of the process, so the local environment, the lab
    and the tests may each ask for the same bucket.
    """
    from botocore.exceptions import ClientError

    _require_loopback(endpoint_url)
    s3 = boto3.session.Session(region_name=region, **_FAKE_CREDENTIALS).client(
        "s3", endpoint_url=endpoint_url)
    params: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # us-east-1 takes no LocationConstraint (S3 API, CreateBucket)
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def use_moto_account(client: Any, account_id: str) -> Any:
    """Make ``client``'s requests land in moto account ``account_id``; returns the client.

    moto picks the account of a request from its ``x-moto-account-id`` header (before falling
    back to the access key), so one server can hold isolated worlds side by side. The default
    account needs no header; the agent's own clients never send one.
    """
    if account_id != ACCOUNT_ID:
        def _add_header(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account_id
        client.meta.events.register("before-sign.*.*", _add_header)
    return client


def seed_world(endpoint_url: str, private_dns: bool = False,
               account_id: str = ACCOUNT_ID) -> WorldIds:
    """Create the world in the moto server at ``endpoint_url`` (same process) and return its ids.

    ``private_dns`` sets the S3 interface endpoint's PrivateDnsEnabled (for all resolvers, not
    only inbound resolver endpoints). ``account_id`` seeds the world into another moto account
    of the same server, isolated from the default one (see :func:`use_moto_account`).
    """
    ec2 = local_ec2_client(endpoint_url, REGION, account_id)
    s3_list_id, s3_version = _patch_s3_prefix_list(endpoint_url, REGION, account_id)
    us_east_1_list_id, _ = _patch_s3_prefix_list(endpoint_url, "us-east-1", account_id)

    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=_name("vpc", "app-vpc"))[
        "Vpc"]["VpcId"]
    # Interface-endpoint private DNS needs both VPC DNS attributes (PrivateLink guide, "DNS
    # hostnames": enableDnsSupport and enableDnsHostnames).
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    default_sg = moto_patches.add_default_security_group_ingress(vpc_id, REGION, account_id)
    public = _subnet(ec2, vpc_id, PUBLIC_SUBNET_CIDR, "public")
    app = _subnet(ec2, vpc_id, APP_SUBNET_CIDR, "app")
    endpoints = _subnet(ec2, vpc_id, ENDPOINT_SUBNET_CIDR, "endpoints")

    igw = ec2.create_internet_gateway(TagSpecifications=_name("internet-gateway", "igw"))[
        "InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)

    # AllocateAddress's Address parameter (BYOIP) gives the EIP a fixed documentation address.
    eip = ec2.allocate_address(Domain="vpc", Address=NAT_PUBLIC_IP)
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip["AllocationId"],
                                 TagSpecifications=_name("natgateway", "nat"))["NatGateway"]
    nat_id = nat["NatGatewayId"]
    moto_patches.set_nat_gateway_private_ip(nat_id, NAT_PRIVATE_IP, REGION, account_id)

    main_rt = _main_route_table(ec2, vpc_id)
    public_rt = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_name(
        "route-table", "public"))["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    app_rt = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_name(
        "route-table", "app"))["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=app_rt, SubnetId=app)
    ec2.create_route(RouteTableId=app_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat_id)

    # The gateway endpoint adds "pl-<S3> -> vpce-…" to the app table (moto does this right).
    gateway = ec2.create_vpc_endpoint(
        VpcId=vpc_id, ServiceName=S3_SERVICE, VpcEndpointType="Gateway", RouteTableIds=[app_rt],
        TagSpecifications=_name("vpc-endpoint", "s3-gateway"))["VpcEndpoint"]
    interface_id, interface_eni, dns_names = _interface_endpoint(
        ec2, vpc_id, endpoints, S3_SERVICE, INTERFACE_ENDPOINT_IP, private_dns, "s3-interface",
        account_id)

    reservation = ec2.run_instances(
        ImageId=_AMI_ID, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=app,
        PrivateIpAddress=HOST_IP, Placement={"AvailabilityZone": AVAILABILITY_ZONE},
        TagSpecifications=_name("instance", "agent-host"))
    instance = reservation["Instances"][0]
    primary = next(n for n in instance["NetworkInterfaces"]
                   if n.get("Attachment", {}).get("DeviceIndex", 0) == 0)

    ids = WorldIds(
        region=REGION, account_id=account_id, availability_zone=AVAILABILITY_ZONE, vpc_id=vpc_id,
        app_subnet_id=app, endpoint_subnet_id=endpoints, public_subnet_id=public,
        main_route_table_id=main_rt, app_route_table_id=app_rt, public_route_table_id=public_rt,
        internet_gateway_id=igw, nat_gateway_id=nat_id, nat_private_ip=NAT_PRIVATE_IP,
        nat_public_ip=NAT_PUBLIC_IP, eip_allocation_id=eip["AllocationId"],
        gateway_endpoint_id=gateway["VpcEndpointId"], interface_endpoint_id=interface_id,
        interface_endpoint_eni_id=interface_eni, interface_endpoint_ip=INTERFACE_ENDPOINT_IP,
        interface_endpoint_dns_names=dns_names, private_dns=private_dns,
        instance_id=instance["InstanceId"], instance_ip=instance["PrivateIpAddress"],
        instance_mac=primary["MacAddress"], instance_eni_id=primary["NetworkInterfaceId"],
        s3_prefix_list_id=s3_list_id, s3_prefix_list_version=s3_version,
        us_east_1_s3_prefix_list_id=us_east_1_list_id, default_security_group_id=default_sg)
    logger.info("seeded world: VPC %s, app subnet %s, instance %s", vpc_id, app,
                ids.instance_id)
    return ids


def seed_hub_vpc(endpoint_url: str, connect_to: WorldIds | None = None,
                 account_id: str = ACCOUNT_ID) -> HubIds:
    """Create a hub VPC with an S3 interface endpoint (ENI 10.1.2.60) and an EC2 one (10.1.2.61).

    With ``connect_to``, a transit gateway joins both VPCs and the world's app table gets
    ``10.1.0.0/16 -> tgw-…`` (how spokes reach a centralised endpoint); without it the world's
    routes are left as they are. The hub goes into ``connect_to``'s account when given.
    """
    if connect_to is not None:
        account_id = connect_to.account_id
    ec2 = local_ec2_client(endpoint_url, REGION, account_id)
    vpc_id = ec2.create_vpc(CidrBlock=HUB_VPC_CIDR, TagSpecifications=_name("vpc", "hub-vpc"))[
        "Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    moto_patches.add_default_security_group_ingress(vpc_id, REGION, account_id)
    workload = _subnet(ec2, vpc_id, HUB_WORKLOAD_SUBNET_CIDR, "hub-workload")
    endpoints = _subnet(ec2, vpc_id, HUB_ENDPOINT_SUBNET_CIDR, "hub-endpoints")
    main_rt = _main_route_table(ec2, vpc_id)
    s3_id, s3_eni, s3_names = _interface_endpoint(
        ec2, vpc_id, endpoints, S3_SERVICE, HUB_INTERFACE_ENDPOINT_IP, False, "hub-s3",
        account_id)
    ec2_id, ec2_eni, _ = _interface_endpoint(
        ec2, vpc_id, endpoints, EC2_SERVICE, HUB_EC2_ENDPOINT_IP, False, "hub-ec2",
        account_id)
    tgw_id = None
    if connect_to is not None:
        tgw_id = ec2.create_transit_gateway(Description="hub")["TransitGateway"][
            "TransitGatewayId"]
        ec2.create_transit_gateway_vpc_attachment(
            TransitGatewayId=tgw_id, VpcId=connect_to.vpc_id, SubnetIds=[connect_to.app_subnet_id])
        ec2.create_transit_gateway_vpc_attachment(
            TransitGatewayId=tgw_id, VpcId=vpc_id, SubnetIds=[endpoints])
        ec2.create_route(RouteTableId=connect_to.app_route_table_id,
                         DestinationCidrBlock=HUB_VPC_CIDR, TransitGatewayId=tgw_id)
    return HubIds(
        account_id=account_id, vpc_id=vpc_id, workload_subnet_id=workload, endpoint_subnet_id=endpoints,
        main_route_table_id=main_rt, interface_endpoint_id=s3_id,
        interface_endpoint_eni_id=s3_eni, interface_endpoint_ip=HUB_INTERFACE_ENDPOINT_IP,
        interface_endpoint_dns_names=s3_names, ec2_endpoint_id=ec2_id,
        ec2_endpoint_eni_id=ec2_eni, ec2_endpoint_ip=HUB_EC2_ENDPOINT_IP,
        transit_gateway_id=tgw_id)


def remove_gateway_route(endpoint_url: str, ids: WorldIds) -> None:
    """Take the app route table off the gateway endpoint (the agent should notice the change).

    On AWS, ModifyVpcEndpoint RemoveRouteTableIds removes the endpoint's route from the table
    (VPC user guide, "Gateway endpoints": associate route tables). moto only drops the table id,
    so the route itself goes with DeleteRoute(DestinationPrefixListId), which moto supports.
    """
    ec2 = local_ec2_client(endpoint_url, ids.region, ids.account_id)
    ec2.modify_vpc_endpoint(VpcEndpointId=ids.gateway_endpoint_id,
                            RemoveRouteTableIds=[ids.app_route_table_id])
    tables = ec2.describe_route_tables(RouteTableIds=[ids.app_route_table_id])["RouteTables"]
    if any(r.get("DestinationPrefixListId") == ids.s3_prefix_list_id
           for t in tables for r in t.get("Routes", [])):
        ec2.delete_route(RouteTableId=ids.app_route_table_id,
                         DestinationPrefixListId=ids.s3_prefix_list_id)
    logger.info("removed %s -> %s from %s", ids.s3_prefix_list_id, ids.gateway_endpoint_id,
                ids.app_route_table_id)


def restore_gateway_route(endpoint_url: str, ids: WorldIds) -> None:
    """Put the app route table back on the gateway endpoint (undoes :func:`remove_gateway_route`)."""
    ec2 = local_ec2_client(endpoint_url, ids.region, ids.account_id)
    ec2.modify_vpc_endpoint(VpcEndpointId=ids.gateway_endpoint_id,
                            AddRouteTableIds=[ids.app_route_table_id])
    moto_patches.add_gateway_endpoint_route(ids.app_route_table_id, ids.gateway_endpoint_id,
                                            ids.region, ids.account_id)


def set_security_group_egress(endpoint_url: str, ids: WorldIds,
                              permissions: list[dict[str, Any]],
                              group_id: str | None = None) -> str:
    """Replace the egress rules of ``group_id`` (default: the instance's group) with
    ``permissions`` (AuthorizeSecurityGroupEgress IpPermissions; [] leaves none). Returns the
    group id."""
    ec2 = local_ec2_client(endpoint_url, ids.region, ids.account_id)
    group = group_id or ids.default_security_group_id
    current = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    if current.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(GroupId=group,
                                         IpPermissions=current["IpPermissionsEgress"])
    if permissions:
        ec2.authorize_security_group_egress(GroupId=group, IpPermissions=permissions)
    return group


def set_security_group_ingress(endpoint_url: str, ids: WorldIds,
                               permissions: list[dict[str, Any]], group_id: str) -> str:
    """Replace the ingress rules of ``group_id`` with ``permissions``."""
    ec2 = local_ec2_client(endpoint_url, ids.region, ids.account_id)
    current = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    if current.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=current["IpPermissions"])
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    return group_id


def create_security_group(endpoint_url: str, ids: WorldIds, name: str) -> str:
    """A new security group in the world's VPC (AWS gives it one egress-all rule)."""
    ec2 = local_ec2_client(endpoint_url, ids.region, ids.account_id)
    return str(ec2.create_security_group(GroupName=name, Description=name,
                                         VpcId=ids.vpc_id)["GroupId"])


def set_subnet_network_acl(endpoint_url: str, ids: WorldIds, subnet_id: str,
                           entries: list[dict[str, Any]]) -> str:
    """Give ``subnet_id`` a new custom network ACL with ``entries`` (CreateNetworkAclEntry
    parameters without NetworkAclId) and its ``*`` rules; returns the ACL id."""
    ec2 = local_ec2_client(endpoint_url, ids.region, ids.account_id)
    acl_id = ec2.create_network_acl(VpcId=ids.vpc_id)["NetworkAcl"]["NetworkAclId"]
    moto_patches.add_network_acl_default_rules(acl_id, ids.region, ids.account_id)
    for entry in entries:
        ec2.create_network_acl_entry(NetworkAclId=acl_id, **entry)
    current = ec2.describe_network_acls(Filters=[
        {"Name": "association.subnet-id", "Values": [subnet_id]}])["NetworkAcls"]
    association = next(a["NetworkAclAssociationId"] for a in current[0]["Associations"]
                       if a["SubnetId"] == subnet_id)
    ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl_id)
    return str(acl_id)


def add_cross_region_interface_endpoint(endpoint_url: str, ids: WorldIds, service_region: str,
                                        ip: str) -> tuple[str, tuple[str, ...]]:
    """An interface endpoint in the world's endpoint subnet serving S3 of ``service_region``
    (cross-Region PrivateLink: ServiceRegion on CreateVpcEndpoint; moto accepts it but does not
    echo it back, so the agent reads the region from the service name). Returns its id and DNS
    names."""
    ec2 = local_ec2_client(endpoint_url, ids.region, ids.account_id)
    service = f"com.amazonaws.{service_region}.s3"
    endpoint = ec2.create_vpc_endpoint(
        VpcId=ids.vpc_id, ServiceName=service, ServiceRegion=service_region,
        VpcEndpointType="Interface", SubnetIds=[ids.endpoint_subnet_id], PrivateDnsEnabled=False,
        TagSpecifications=_name("vpc-endpoint", f"s3-{service_region}"))["VpcEndpoint"]
    endpoint_id = endpoint["VpcEndpointId"]
    moto_patches.make_endpoint_eni(endpoint["NetworkInterfaceIds"][0], endpoint_id, ip,
                                   ids.region, ids.account_id)
    # The region label of the endpoint-specific name is the service region here (the local
    # world's choice): the verdict does not read it, the ENI address decides.
    names = endpoint_dns_names(endpoint_id, service, service_region, (), wildcard=True)
    zone = moto_patches.hosted_zone_id_of(endpoint_id, ids.region, ids.account_id)
    moto_patches.set_endpoint_dns(endpoint_id, [(n, zone) for n in names], ids.region,
                                  dns_options={"DnsRecordIpType": "ipv4"},
                                  ip_address_type="ipv4", account_id=ids.account_id)
    return endpoint_id, names


def endpoint_dns_names(endpoint_id: str, service_name: str, region: str,
                       availability_zones: tuple[str, ...], wildcard: bool) -> tuple[str, ...]:
    """The DNS names AWS gives an interface endpoint: one regional, one per Availability Zone.

    Form: ``vpce-<id without "vpce-">-<8 random [a-z0-9]>[-<az>].<service>.<region>.vpce.amazonaws.com``
    (PrivateLink guide, "DNS hostnames"). S3's names carry a leading ``*.``: requests go to
    ``bucket.vpce-….s3.REGION.vpce.amazonaws.com`` (S3 user guide, "AWS PrivateLink for Amazon
    S3": endpoint-specific DNS names). The random part is derived from the endpoint id, so the
    same endpoint always gets the same names.
    """
    short = service_name.rsplit(".", 1)[-1]
    rng = random.Random(endpoint_id)
    tag = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    base = f"{endpoint_id}-{tag}"
    prefix = "*." if wildcard else ""
    names = [f"{prefix}{base}.{short}.{region}.vpce.amazonaws.com"]
    names += [f"{prefix}{base}-{az}.{short}.{region}.vpce.amazonaws.com"
              for az in availability_zones]
    return tuple(names)


def _interface_endpoint(ec2: Any, vpc_id: str, subnet_id: str, service_name: str, ip: str,
                        private_dns: bool, name: str, account_id: str
                        ) -> tuple[str, str, tuple[str, ...]]:
    """Create an interface endpoint with one ENI at ``ip``; returns (id, ENI id, DNS names)."""
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id, ServiceName=service_name, VpcEndpointType="Interface",
        SubnetIds=[subnet_id], PrivateDnsEnabled=private_dns,
        TagSpecifications=_name("vpc-endpoint", name))["VpcEndpoint"]
    endpoint_id = endpoint["VpcEndpointId"]
    eni_id = endpoint["NetworkInterfaceIds"][0]
    moto_patches.make_endpoint_eni(eni_id, endpoint_id, ip, REGION, account_id)
    is_s3 = service_name.endswith(".s3")
    names = endpoint_dns_names(endpoint_id, service_name, REGION, (AVAILABILITY_ZONE,),
                               wildcard=is_s3)
    zone = moto_patches.hosted_zone_id_of(endpoint_id, REGION, account_id)
    options: dict[str, Any] = {"DnsRecordIpType": "ipv4"}
    if is_s3 and private_dns:
        # Private DNS for all resolvers: lookups inside the VPC get the ENI addresses too
        # (S3 user guide, "Private DNS for interface endpoints").
        options["PrivateDnsOnlyForInboundResolverEndpoint"] = False
    moto_patches.set_endpoint_dns(endpoint_id, [(n, zone) for n in names], REGION,
                                  dns_options=options, ip_address_type="ipv4",
                                  account_id=account_id)
    return endpoint_id, eni_id, names


def _patch_s3_prefix_list(endpoint_url: str, region: str, account_id: str) -> tuple[str, int]:
    """Give ``region``'s S3 prefix list this world's CIDRs; returns (id, version)."""
    version = moto_patches.set_aws_prefix_list_cidrs(region, S3_PREFIX_LIST_CIDRS[region],
                                                     account_id=account_id)
    ec2 = local_ec2_client(endpoint_url, region, account_id)
    lists = ec2.describe_managed_prefix_lists(Filters=[
        {"Name": "prefix-list-name", "Values": [f"com.amazonaws.{region}.s3"]}])["PrefixLists"]
    return lists[0]["PrefixListId"], version


def _subnet(ec2: Any, vpc_id: str, cidr: str, name: str) -> str:
    """Create a subnet in the world's Availability Zone; returns its id."""
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=AVAILABILITY_ZONE,
                               TagSpecifications=_name("subnet", name))["Subnet"]
    return str(subnet["SubnetId"])


def _main_route_table(ec2: Any, vpc_id: str) -> str:
    """The id of the VPC's main route table."""
    tables = ec2.describe_route_tables(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    return str(tables[0]["RouteTableId"])


def _name(resource_type: str, name: str) -> list[dict[str, Any]]:
    """TagSpecifications giving a resource a Name tag."""
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]


def _require_loopback(endpoint_url: str) -> None:
    """Refuse any endpoint that is not on this machine's loopback (network safety)."""
    host = urlsplit(endpoint_url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the local world only talks to 127.0.0.0/8, not {endpoint_url!r}")
