"""The EC2 inventory collector against a real moto server over HTTP on 127.0.0.1.

Error cases use a tiny 127.0.0.1 HTTP server that answers with EC2's XML error document, or a
closed 127.0.0.1 port; nothing leaves this machine.
"""

from __future__ import annotations

import collections
import http.server
import socket
import threading
from typing import Any, Callable, Iterator

import pytest
from botocore.exceptions import ClientError, ProxyConnectionError

from s3_route_agent import __version__
from s3_route_agent.aws import make_ec2_client
from s3_route_agent.collectors.inventory import (
    collect_inventory,
    endpoint_id_of,
    is_s3_endpoint,
    route_from_api,
    s3_service_names,
)
from s3_route_agent.errors import INVENTORY_ERROR_KINDS, InventoryError, inventory_error_from
from s3_route_agent.devenv.localenv import moto_patches
from s3_route_agent.devenv.localenv import world as local_world
from s3_route_agent.devenv.localenv.world import HubIds, MotoServer, WorldIds
from s3_route_agent.engine.model import Inventory, RouteOrigin, RouteTargetKind

REGION = local_world.REGION


def collect(ec2: Any, ids: WorldIds, subnet_id: str | None = None,
            addresses: tuple[str, ...] = ()) -> Inventory:
    """collect_inventory for the world's VPC (app subnet unless told otherwise)."""
    return collect_inventory(ec2, ids.region, ids.vpc_id, subnet_id or ids.app_subnet_id,
                             addresses, clock=lambda: 1234.5,
                             host_security_group_ids=(ids.default_security_group_id,),
                             host_addresses=(ids.instance_ip,))


def count_calls(ec2: Any) -> collections.Counter[str]:
    """Count the EC2 API calls ``ec2`` makes, by operation name."""
    counts: collections.Counter[str] = collections.Counter()

    def _count(model: Any, **_: Any) -> None:
        counts[model.name] += 1
    ec2.meta.events.register("before-call.ec2.*", _count)
    return counts


# ---------------------------------------------------------------------------------------------
# route table


def test_app_subnet_uses_its_explicit_route_table(world: WorldIds, ec2_client: Any) -> None:
    inventory = collect(ec2_client, world)
    assert inventory.route_table is not None
    assert inventory.route_table.id == world.app_route_table_id
    assert inventory.route_table.association == "explicit"
    assert inventory.route_table.vpc_id == world.vpc_id
    assert inventory.fetched_at == 1234.5


def test_routes_are_mapped_with_target_kinds(world: WorldIds, ec2_client: Any) -> None:
    routes = {r.destination: r for r in collect(ec2_client, world).route_table.routes}
    assert set(routes) == {local_world.VPC_CIDR, "0.0.0.0/0", world.s3_prefix_list_id}
    local = routes[local_world.VPC_CIDR]
    assert (local.target_id, local.target_kind) == ("local", RouteTargetKind.LOCAL)
    default = routes["0.0.0.0/0"]
    assert (default.target_id, default.target_kind) == (world.nat_gateway_id,
                                                        RouteTargetKind.NAT_GATEWAY)
    endpoint = routes[world.s3_prefix_list_id]
    assert endpoint.is_prefix_list
    assert (endpoint.target_id, endpoint.target_kind) == (world.gateway_endpoint_id,
                                                          RouteTargetKind.GATEWAY_ENDPOINT)
    assert all(r.origin is RouteOrigin.STATIC and r.state == "active" for r in routes.values())


def test_subnet_without_association_uses_main_table(world: WorldIds, ec2_client: Any) -> None:
    inventory = collect(ec2_client, world, subnet_id=world.endpoint_subnet_id)
    assert inventory.route_table.id == world.main_route_table_id
    assert inventory.route_table.association == "main"
    assert [r.target_kind for r in inventory.route_table.routes] == [RouteTargetKind.LOCAL]


def test_public_subnet_routes_to_internet_gateway(world: WorldIds, ec2_client: Any) -> None:
    inventory = collect(ec2_client, world, subnet_id=world.public_subnet_id)
    assert inventory.route_table.id == world.public_route_table_id
    default = next(r for r in inventory.route_table.routes if r.destination == "0.0.0.0/0")
    assert (default.target_id, default.target_kind) == (world.internet_gateway_id,
                                                        RouteTargetKind.INTERNET_GATEWAY)


def test_unknown_vpc_has_no_route_table(ec2_client: Any) -> None:
    counts = count_calls(ec2_client)
    inventory = collect_inventory(ec2_client, REGION, "vpc-0000000000000dead",
                                  "subnet-0000000000000dead")
    assert inventory.route_table is None
    assert inventory.endpoints == () and inventory.interfaces == ()
    assert counts["DescribeNetworkInterfaces"] == 0


@pytest.mark.parametrize("route, target, kind", [
    ({"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1"}, "igw-1",
     RouteTargetKind.INTERNET_GATEWAY),
    ({"DestinationCidrBlock": "10.9.0.0/16", "GatewayId": "vgw-1"}, "vgw-1",
     RouteTargetKind.VIRTUAL_PRIVATE_GATEWAY),
    ({"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-1"}, "eigw-1",
     RouteTargetKind.EGRESS_ONLY_INTERNET_GATEWAY),
    ({"DestinationCidrBlock": "10.2.0.0/16", "TransitGatewayId": "tgw-1"}, "tgw-1",
     RouteTargetKind.TRANSIT_GATEWAY),
    ({"DestinationCidrBlock": "10.3.0.0/16", "VpcPeeringConnectionId": "pcx-1"}, "pcx-1",
     RouteTargetKind.PEERING_CONNECTION),
    ({"DestinationCidrBlock": "10.4.0.0/16", "InstanceId": "i-1", "InstanceOwnerId": "1",
      "NetworkInterfaceId": "eni-1"}, "i-1", RouteTargetKind.INSTANCE),
    ({"DestinationCidrBlock": "10.5.0.0/16", "NetworkInterfaceId": "eni-2"}, "eni-2",
     RouteTargetKind.NETWORK_INTERFACE),
    ({"DestinationCidrBlock": "10.6.0.0/16", "LocalGatewayId": "lgw-1"}, "lgw-1",
     RouteTargetKind.LOCAL_GATEWAY),
    ({"DestinationCidrBlock": "10.7.0.0/16", "CarrierGatewayId": "cagw-1"}, "cagw-1",
     RouteTargetKind.CARRIER_GATEWAY),
    ({"DestinationCidrBlock": "10.8.0.0/16", "CoreNetworkArn": "arn:aws:networkmanager::1:x"},
     "arn:aws:networkmanager::1:x", RouteTargetKind.CORE_NETWORK),
    ({"DestinationCidrBlock": "10.10.0.0/16", "GatewayId": "weird-1"}, "weird-1",
     RouteTargetKind.UNKNOWN),
])
def test_route_target_kinds(route: dict[str, Any], target: str, kind: RouteTargetKind) -> None:
    mapped = route_from_api(route)
    assert mapped is not None
    assert (mapped.target_id, mapped.target_kind) == (target, kind)


def test_route_origin_and_blackhole_are_kept() -> None:
    propagated = route_from_api({"DestinationCidrBlock": "192.168.0.0/16", "GatewayId": "vgw-1",
                                 "Origin": "EnableVgwRoutePropagation", "State": "active"})
    assert propagated.origin is RouteOrigin.PROPAGATED
    blackhole = route_from_api({"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1",
                                "Origin": "CreateRoute", "State": "blackhole"})
    assert (blackhole.origin, blackhole.state) == (RouteOrigin.STATIC, "blackhole")
    assert route_from_api({"GatewayId": "local"}) is None


# ---------------------------------------------------------------------------------------------
# prefix lists, endpoints, ENIs, NAT


def test_s3_prefix_list_has_the_patched_cidrs(world: WorldIds, ec2_client: Any) -> None:
    inventory = collect(ec2_client, world)
    assert inventory.s3_prefix_list_id == world.s3_prefix_list_id
    s3 = inventory.prefix_list(world.s3_prefix_list_id)
    assert s3 is not None
    assert s3.name == "com.amazonaws.eu-west-1.s3"
    assert s3.cidrs == ("198.51.100.0/25",)
    assert s3.version == world.s3_prefix_list_version >= 2
    assert len(inventory.prefix_lists) == 1


def test_us_east_1_prefix_list_differs(world: WorldIds, ec2_for: Callable[..., Any]) -> None:
    ec2 = ec2_for(world, "us-east-1")
    inventory = collect_inventory(ec2, "us-east-1", "vpc-0000000000000dead", "subnet-1")
    assert inventory.s3_prefix_list_id == world.us_east_1_s3_prefix_list_id
    assert inventory.prefix_lists[0].cidrs == ("203.0.113.0/25",)


def test_endpoints_are_s3_only_with_their_details(world: WorldIds, ec2_client: Any) -> None:
    inventory = collect(ec2_client, world)
    assert {e.id for e in inventory.endpoints} == {world.gateway_endpoint_id,
                                                   world.interface_endpoint_id}
    gateway = inventory.endpoint(world.gateway_endpoint_id)
    assert gateway.type == "Gateway" and gateway.service_name == local_world.S3_SERVICE
    assert gateway.route_table_ids == (world.app_route_table_id,)
    assert gateway.is_available and not gateway.private_dns_enabled
    assert gateway.policy_document and '"Allow"' in gateway.policy_document
    interface = inventory.endpoint(world.interface_endpoint_id)
    assert interface.type == "Interface"
    assert interface.network_interface_ids == (world.interface_endpoint_eni_id,)
    assert interface.private_dns_enabled is False
    assert interface.ip_address_type == "ipv4"
    suffix = world.interface_endpoint_id.removeprefix("vpce-")
    regional, zonal = interface.dns_names
    assert regional.startswith(f"*.vpce-{suffix}-")
    assert regional.endswith(".s3.eu-west-1.vpce.amazonaws.com")
    assert zonal.endswith("-eu-west-1a.s3.eu-west-1.vpce.amazonaws.com")
    assert interface.dns_names == world.interface_endpoint_dns_names


def test_non_s3_endpoint_is_filtered_out(hub: HubIds, ec2_client: Any) -> None:
    inventory = collect_inventory(ec2_client, REGION, hub.vpc_id, hub.workload_subnet_id)
    assert [e.id for e in inventory.endpoints] == [hub.interface_endpoint_id]
    assert hub.ec2_endpoint_id not in {e.id for e in inventory.endpoints}
    assert [i.id for i in inventory.interfaces] == [hub.interface_endpoint_eni_id]
    assert inventory.route_table.association == "main"
    assert inventory.route_table.id == hub.main_route_table_id
    assert inventory.nat_gateways == ()


def test_s3_service_names() -> None:
    assert s3_service_names("eu-west-1") == {"com.amazonaws.eu-west-1.s3",
                                             "com.amazonaws.s3-global.accesspoint",
                                             "com.amazonaws.eu-west-1.s3express"}


def test_interface_endpoint_eni(world: WorldIds, ec2_client: Any) -> None:
    inventory = collect(ec2_client, world)
    (eni,) = inventory.interfaces
    assert eni.id == world.interface_endpoint_eni_id
    assert eni.addresses == ("10.0.2.50",)
    assert eni.endpoint_id == world.interface_endpoint_id
    assert eni.interface_type == "vpc_endpoint"
    assert eni.description == f"VPC Endpoint Interface {world.interface_endpoint_id}"
    assert (eni.vpc_id, eni.subnet_id) == (world.vpc_id, world.endpoint_subnet_id)


def test_nat_gateway(world: WorldIds, ec2_client: Any) -> None:
    (nat,) = collect(ec2_client, world).nat_gateways
    assert nat.id == world.nat_gateway_id
    assert nat.subnet_id == world.public_subnet_id
    assert nat.private_addresses == ("10.0.0.5",)
    assert nat.public_addresses == ("203.0.113.200",)


def test_address_of_endpoint_eni_in_another_vpc(world: WorldIds, hub: HubIds,
                                                ec2_client: Any) -> None:
    inventory = collect(ec2_client, world, addresses=(hub.interface_endpoint_ip, "10.0.2.50"))
    by_id = {i.id: i for i in inventory.interfaces}
    remote = by_id[hub.interface_endpoint_eni_id]
    assert remote.vpc_id == hub.vpc_id != world.vpc_id
    assert remote.addresses == ("10.1.2.60",)
    assert remote.endpoint_id == hub.interface_endpoint_id
    assert remote.endpoint_id not in {e.id for e in inventory.endpoints}   # not this VPC's
    # ... but described (one more DescribeVpcEndpoints), so the verdict knows it serves S3.
    assert [e.id for e in inventory.remote_endpoints] == [hub.interface_endpoint_id]
    assert inventory.endpoint(remote.endpoint_id).vpc_id == hub.vpc_id
    assert by_id[world.interface_endpoint_eni_id].endpoint_id == world.interface_endpoint_id


def test_address_of_a_non_endpoint_eni_is_kept(world: WorldIds, ec2_client: Any) -> None:
    inventory = collect(ec2_client, world, addresses=(world.instance_ip, "10.0.99.99"))
    host = next(i for i in inventory.interfaces if i.id == world.instance_eni_id)
    assert host.endpoint_id is None
    assert (host.addresses[0], host.interface_type) == (world.instance_ip, "interface")
    assert not any("10.0.99.99" in i.addresses for i in inventory.interfaces)


def test_endpoint_id_from_eni_description() -> None:
    assert endpoint_id_of({"InterfaceType": "vpc_endpoint",
                           "Description": "VPC Endpoint Interface vpce-0a1b2c3d4e5f60718"}
                          ) == "vpce-0a1b2c3d4e5f60718"
    assert endpoint_id_of({"InterfaceType": "vpc_endpoint", "Description": ""}) is None
    assert endpoint_id_of({"InterfaceType": "interface", "Description": "web"}) is None


# ---------------------------------------------------------------------------------------------
# the call budget


def test_call_budget_of_a_cold_collection(world: WorldIds, hub: HubIds,
                                          ec2_client: Any) -> None:
    counts = count_calls(ec2_client)
    collect(ec2_client, world, addresses=(hub.interface_endpoint_ip, world.instance_ip,
                                          "10.0.2.50", "2001:db8::5"))
    # One call per API, except: the address lookup (DescribeNetworkInterfaces) and the hub's
    # endpoint, found through its ENI (DescribeVpcEndpoints by id). Block Public Access is off:
    # no DescribeVpcBlockPublicAccessExclusions.
    assert counts == {"DescribeRouteTables": 1, "DescribeManagedPrefixLists": 1,
                      "DescribeVpcEndpoints": 2, "GetManagedPrefixListEntries": 1,
                      "DescribeNetworkInterfaces": 2, "DescribeNatGateways": 1,
                      "DescribeSecurityGroupRules": 1, "DescribeNetworkAcls": 1,
                      "DescribeVpcBlockPublicAccessOptions": 1}


def test_no_address_lookup_when_endpoints_hold_every_address(world: WorldIds,
                                                             ec2_client: Any) -> None:
    counts = count_calls(ec2_client)
    collect(ec2_client, world, addresses=("10.0.2.50", "2001:db8::5"))
    assert counts["DescribeNetworkInterfaces"] == 1
    assert sum(counts.values()) == 9


# ---------------------------------------------------------------------------------------------
# worlds that change (each in its own moto account)


def test_private_dns_world(isolated_world: Callable[..., WorldIds],
                           ec2_for: Callable[[WorldIds], Any]) -> None:
    ids = isolated_world(private_dns=True)
    interface = collect(ec2_for(ids), ids).endpoint(ids.interface_endpoint_id)
    assert interface.private_dns_enabled is True
    assert interface.private_dns_only_for_inbound_resolver_endpoint is False


def test_removing_the_gateway_route_is_seen(isolated_world: Callable[..., WorldIds],
                                            ec2_for: Callable[[WorldIds], Any],
                                            moto_server: MotoServer) -> None:
    ids = isolated_world()
    ec2 = ec2_for(ids)
    local_world.remove_gateway_route(moto_server.endpoint_url, ids)
    inventory = collect(ec2, ids)
    assert not any(r.is_prefix_list for r in inventory.route_table.routes)
    assert inventory.endpoint(ids.gateway_endpoint_id).route_table_ids == ()
    local_world.restore_gateway_route(moto_server.endpoint_url, ids)
    inventory = collect(ec2, ids)
    assert any(r.destination == ids.s3_prefix_list_id and r.target_id == ids.gateway_endpoint_id
               for r in inventory.route_table.routes)


def test_isolated_world_does_not_touch_the_shared_one(world: WorldIds, ec2_client: Any,
                                                      isolated_world: Callable[..., WorldIds]
                                                      ) -> None:
    other = isolated_world()
    assert other.account_id != world.account_id
    vpcs = {v["VpcId"] for v in ec2_client.describe_vpcs()["Vpcs"]}
    assert world.vpc_id in vpcs and other.vpc_id not in vpcs


# ---------------------------------------------------------------------------------------------
# errors


class _ErrorHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's configured EC2 error."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        server: Any = self.server
        server.hits += 1
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                f"<Code>{server.code}</Code><Message>{server.text}</Message></Error></Errors>"
                f"<RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>").encode()
        self.send_response(server.status)
        self.send_header("Content-Type", "text/xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep test output quiet."""


@pytest.fixture
def error_server() -> Iterator[Callable[[int, str, str], Any]]:
    """Factory: a 127.0.0.1 server answering (status, code, message); has .url and .hits."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def _start(status: int, code: str, text: str = "error") -> Any:
        server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ErrorHandler)
        server.status, server.code, server.text, server.hits = status, code, text, 0
        server.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.shutdown()
        server.server_close()


def _fail(endpoint_url: str, max_attempts: int = 1) -> InventoryError:
    """Run the collector against ``endpoint_url`` and return the InventoryError it raises."""
    ec2 = make_ec2_client(REGION, endpoint_url, connect_timeout=0.5, read_timeout=2.0,
                          max_attempts=max_attempts)
    with pytest.raises(InventoryError) as info:
        collect_inventory(ec2, REGION, "vpc-1", "subnet-1")
    return info.value


def test_unauthorized_is_access_denied(error_server: Callable[..., Any]) -> None:
    server = error_server(403, "UnauthorizedOperation",
                          "You are not authorized to perform this operation. Encoded "
                          "authorization failure message: AbCdEf0123")
    error = _fail(server.url)
    assert error.kind == "access_denied"
    assert error.operation == "DescribeRouteTables"
    assert error.message == ("EC2 DescribeRouteTables denied: UnauthorizedOperation "
                             "(add ec2:DescribeRouteTables to the instance role)")


def test_request_limit_is_throttled_and_retried(error_server: Callable[..., Any]) -> None:
    server = error_server(503, "RequestLimitExceeded", "Request limit exceeded.")
    error = _fail(server.url, max_attempts=2)
    assert error.kind == "throttled"
    assert "RequestLimitExceeded" in error.message
    assert server.hits == 2          # standard retry mode retried once, then gave up


def test_not_found_and_other_codes(error_server: Callable[..., Any]) -> None:
    error = _fail(error_server(400, "InvalidVpcID.NotFound",
                               "The vpc ID 'vpc-1' does not exist").url)
    assert error.kind == "not_found"
    assert "InvalidVpcID.NotFound" in error.message
    error = _fail(error_server(400, "InvalidParameterValue", "bad\nvalue").url)
    assert error.kind == "api_error"
    assert "\n" not in error.message


def test_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = _fail(f"http://127.0.0.1:{port}")
    assert error.kind == "unreachable"
    assert error.message.startswith("EC2 DescribeRouteTables: EC2 API unreachable")


def test_no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                        moto_server: MotoServer) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, file in (("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
                       ("AWS_CONFIG_FILE", "config"), ("BOTO_CONFIG", "boto")):
        (tmp_path / file).write_text("")
        monkeypatch.setenv(name, str(tmp_path / file))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    error = _fail(moto_server.endpoint_url)
    assert error.kind == "no_credentials"
    assert error.operation == "DescribeRouteTables"


def test_messages_carry_no_secrets() -> None:
    client_error = ClientError(
        {"Error": {"Code": "InternalError",
                   "Message": "key AKIAIOSFODNN7EXAMPLE\nfailed"}}, "DescribeRouteTables")
    error = inventory_error_from(client_error, "DescribeRouteTables")
    assert error.kind == "api_error"
    assert "AKIAIOSFODNN7EXAMPLE" not in error.message and "\n" not in error.message
    proxy = ProxyConnectionError(proxy_url="http://user:s3cret@127.0.0.1:3128", error="refused")
    error = inventory_error_from(proxy, "DescribeVpcEndpoints")
    assert error.kind == "unreachable"
    assert "s3cret" not in error.message
    assert inventory_error_from(ValueError("odd"), "DescribeNatGateways").kind == "api_error"
    assert set(INVENTORY_ERROR_KINDS) == {"no_credentials", "access_denied", "throttled",
                                          "unreachable", "not_found", "api_error"}


def test_client_config() -> None:
    ec2 = make_ec2_client(REGION, "http://127.0.0.1:9", connect_timeout=1.5, read_timeout=4.0,
                          max_attempts=2)
    config = ec2.meta.config
    assert f"s3-route-agent/{__version__}" in config.user_agent_extra
    assert (config.connect_timeout, config.read_timeout) == (1.5, 4.0)
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == 2
    assert ec2.meta.endpoint_url == "http://127.0.0.1:9"


# ---------------------------------------------------------------------------------------------
# issue 10: security groups, network ACLs, Block Public Access, cross-Region endpoints


def test_filters_are_collected(world: WorldIds, ec2_client: Any) -> None:
    inventory = collect(ec2_client, world)
    filters = inventory.traffic_filters
    assert filters is not None and filters.problems == ()
    group = world.default_security_group_id
    assert filters.host_security_group_ids == (group,)
    assert filters.host_addresses == (world.instance_ip,)
    egress = filters.rules_of((group,), egress=True)
    ingress = filters.rules_of((group,), egress=False)
    assert [(r.protocol, r.cidr) for r in egress] == [("-1", "0.0.0.0/0")]
    # AWS's default group accepts its own members (moto_patches adds the rule moto lacks).
    assert [r.referenced_group_id for r in ingress] == [group]
    assert inventory.endpoint(world.interface_endpoint_id).security_group_ids == (group,)
    eni = next(i for i in inventory.interfaces if i.id == world.interface_endpoint_eni_id)
    assert eni.security_group_ids == (group,)
    # The ACLs of the host subnet, the NAT gateway's and the endpoint ENI's.
    for subnet in (world.app_subnet_id, world.public_subnet_id, world.endpoint_subnet_id):
        assert filters.acl_of(subnet) is not None and filters.acl_of(subnet).is_default
    assert filters.block_public_access.mode == "off"     # the app table routes to a NAT gateway


def test_no_block_public_access_call_without_a_public_route(
        isolated_world: Callable[..., WorldIds], ec2_for: Callable[..., Any],
        moto_server: MotoServer) -> None:
    ids = isolated_world()
    ec2 = ec2_for(ids)
    counts = count_calls(ec2)
    # The endpoints subnet uses the main table: local routes only.
    inventory = collect(ec2, ids, subnet_id=ids.endpoint_subnet_id)
    assert inventory.traffic_filters.block_public_access is None
    assert "DescribeVpcBlockPublicAccessOptions" not in counts


def test_block_public_access_and_the_exclusions_that_matter(
        isolated_world: Callable[..., WorldIds], ec2_for: Callable[..., Any]) -> None:
    ids = isolated_world()
    ec2 = ec2_for(ids)
    try:
        moto_patches.set_block_public_access(REGION, "block-bidirectional", ids.account_id)
        wanted = moto_patches.add_block_public_access_exclusion(
            ids.public_subnet_id, "allow-egress", REGION, ids.account_id)
        moto_patches.add_block_public_access_exclusion(      # not on the way: filtered out
            ids.endpoint_subnet_id, "allow-bidirectional", REGION, ids.account_id)
        counts = count_calls(ec2)
        bpa = collect(ec2, ids).traffic_filters.block_public_access
        assert (bpa.mode, bpa.state, bpa.exclusions_allowed) == (
            "block-bidirectional", "update-complete", "allowed")
        assert [(e.id, e.resource_id, e.mode, e.in_force) for e in bpa.exclusions] == [
            (wanted, ids.public_subnet_id, "allow-egress", True)]
        assert counts["DescribeVpcBlockPublicAccessExclusions"] == 1
    finally:
        moto_patches.clear_block_public_access(REGION, ids.account_id)


def test_host_interface_by_instance_id_when_imds_gave_no_groups(world: WorldIds,
                                                                ec2_client: Any) -> None:
    counts = count_calls(ec2_client)
    inventory = collect_inventory(ec2_client, world.region, world.vpc_id, world.app_subnet_id,
                                  instance_id=world.instance_id)
    filters = inventory.traffic_filters
    assert filters.host_security_group_ids == (world.default_security_group_id,)
    assert filters.host_addresses == (world.instance_ip,)
    assert counts["DescribeNetworkInterfaces"] == 2      # endpoint ENIs, this host's interface
    unknown = collect_inventory(ec2_client, world.region, world.vpc_id, world.app_subnet_id)
    assert unknown.traffic_filters.host_security_group_ids is None
    assert "identity.instance_id is not configured" in \
        unknown.traffic_filters.problem("security_groups")


def test_a_denied_filter_call_is_a_fact_not_a_failure(world: WorldIds, ec2_client: Any) -> None:
    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}},
                          "DescribeNetworkAcls")
    ec2_client.meta.events.register("before-call.ec2.DescribeNetworkAcls", deny)
    filters = collect(ec2_client, world).traffic_filters
    assert filters.network_acls == ()
    assert "add ec2:DescribeNetworkAcls to the instance role" in filters.problem("network_acls")
    assert filters.problem("security_groups") is None


def test_a_throttled_filter_call_fails_the_refresh(world: WorldIds, ec2_client: Any) -> None:
    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow"}},
                          "DescribeSecurityGroupRules")
    ec2_client.meta.events.register("before-call.ec2.DescribeSecurityGroupRules", throttle)
    with pytest.raises(InventoryError) as caught:
        collect(ec2_client, world)
    assert caught.value.kind == "throttled"


def test_cross_region_s3_endpoints_are_kept(isolated_world: Callable[..., WorldIds],
                                            ec2_for: Callable[..., Any],
                                            moto_server: MotoServer) -> None:
    ids = isolated_world()
    endpoint_id, _ = local_world.add_cross_region_interface_endpoint(
        moto_server.endpoint_url, ids, "us-west-2", "10.0.2.70")
    inventory = collect(ec2_for(ids), ids)
    far = inventory.endpoint(endpoint_id)
    assert far is not None and far.service_region_served == "us-west-2"
    assert inventory.s3_endpoints("us-west-2", "interface") == (far,)
    assert any("10.0.2.70" in i.addresses and i.endpoint_id == endpoint_id
               for i in inventory.interfaces)


def test_other_vpcs_non_s3_endpoint_enis_are_not_s3(world: WorldIds, hub: HubIds,
                                                    ec2_client: Any) -> None:
    inventory = collect(ec2_client, world, addresses=(hub.ec2_endpoint_ip,
                                                      hub.interface_endpoint_ip))
    assert hub.ec2_endpoint_id in inventory.non_s3_endpoint_ids
    assert [e.id for e in inventory.remote_endpoints] == [hub.interface_endpoint_id]


@pytest.mark.parametrize("endpoint,s3", [
    ({"VpcEndpointType": "Interface", "ServiceName": "com.amazonaws.us-west-2.s3"}, True),
    ({"VpcEndpointType": "Gateway", "ServiceName": "com.amazonaws.eu-west-1.s3"}, True),
    ({"VpcEndpointType": "Interface", "ServiceName": "com.amazonaws.s3-global.accesspoint"},
     True),
    ({"VpcEndpointType": "Interface", "ServiceName": "com.amazonaws.eu-west-1.s3express"}, True),
    ({"VpcEndpointType": "Resource", "ResourceConfigurationArn": "arn:aws:vpc-lattice:…"}, False),
    ({"VpcEndpointType": "ServiceNetwork", "ServiceName": "com.amazonaws.eu-west-1.s3"}, False),
    ({"VpcEndpointType": "Interface", "ServiceName": "com.amazonaws.eu-west-1.ec2"}, False),
    ({"VpcEndpointType": "Interface", "ServiceName": "com.amazonaws.vpce.eu-west-1.vpce-svc-1"},
     False),
])
def test_is_s3_endpoint(endpoint: dict[str, str], s3: bool) -> None:
    assert is_s3_endpoint(endpoint) is s3
