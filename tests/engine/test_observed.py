"""The host's observed S3 traffic, from tables: which peers are S3, how each flow is judged, bytes
counted once across looks, the NAT cost estimate, the names seen, the discovered targets."""

from __future__ import annotations

import pytest

from s3_route_agent.engine.model import (Expect, Facts, Identity, Inventory, NetworkInterface,
                                         PathKind, PrefixList, Route, RouteTable,
                                         RouteTargetKind, S3Range, Status, VpcEndpoint)
from s3_route_agent.engine.observed import (BYTES_PER_GB, DnsSighting, LookupWindow, NameRecord,
                                            ObservedSection, ObservedState, ObserveRules,
                                            ProcessInfo, S3Membership, SocketObservation,
                                            TcpSocket, count_new_bytes, discovered_targets,
                                            host_sightings, hostname_index, is_s3_sighting,
                                            judge_flow, judge_observation, nat_price,
                                            update_names, usd_for)
from s3_route_agent.engine.routes import S3RangeIndex
from s3_route_agent.report.document import summary_line

IDENTITY = Identity(region="eu-west-1", vpc_id="vpc-1", subnet_id="subnet-1", source="config")
INVENTORY = Inventory(
    "eu-west-1", "vpc-1", "subnet-1",
    RouteTable("rtb-1", "vpc-1", "explicit",
               (Route("10.0.0.0/16", "local", RouteTargetKind.LOCAL),
                Route("0.0.0.0/0", "nat-1", RouteTargetKind.NAT_GATEWAY),
                Route("pl-s3", "vpce-gw", RouteTargetKind.GATEWAY_ENDPOINT))),
    (PrefixList("pl-s3", "com.amazonaws.eu-west-1.s3", 2, ("52.218.0.0/17",)),),
    (VpcEndpoint("vpce-gw", "Gateway", "com.amazonaws.eu-west-1.s3", "available", "vpc-1",
                 route_table_ids=("rtb-1",)),
     VpcEndpoint("vpce-if", "Interface", "com.amazonaws.eu-west-1.s3", "available", "vpc-1",
                 network_interface_ids=("eni-if",))),
    (NetworkInterface("eni-if", "vpc-1", "subnet-2", "vpc_endpoint", "", ("10.0.2.50",),
                      "vpce-if"),
     # an S3 endpoint of a hub VPC, found by address (centralised endpoints)
     NetworkInterface("eni-hub", "vpc-hub", "subnet-h", "vpc_endpoint", "", ("10.1.2.60",),
                      "vpce-hub"),
     # an ENI of this VPC that is no S3 endpoint's (an instance)
     NetworkInterface("eni-app", "vpc-1", "subnet-1", "interface", "", ("10.0.1.77",), None)),
    s3_prefix_list_id="pl-s3")
RANGES = (S3Range("52.218.0.0/17", "eu-west-1"), S3Range("52.216.0.0/15", "us-east-1"),
          S3Range("2600:1fa0::/32", "us-east-1"))
FACTS = Facts(identity=IDENTITY, inventory=INVENTORY, s3_ranges=RANGES)
MEMBERSHIP = S3Membership(FACTS, S3RangeIndex(RANGES), proxies=[("10.0.1.20", 3128)],
                          dns_addresses=["198.51.100.7"])


@pytest.mark.parametrize("ip,port,why", [
    ("10.0.2.50", 443, "interface_endpoint"),      # this VPC's S3 interface endpoint ENI
    ("10.1.2.60", 443, "interface_endpoint"),      # an S3 endpoint ENI found by address
    ("10.0.1.77", 443, None),                      # an ENI, but no endpoint's
    ("52.218.1.9", 443, "prefix_list"),            # the region's S3 prefix list
    ("::ffff:52.218.1.9", 443, "prefix_list"),     # an IPv6 socket's IPv4-mapped peer
    ("52.216.8.10", 443, "s3_ranges"),             # S3 of another region (ip-ranges.json)
    ("2600:1fa0:80::1", 443, "s3_ranges"),
    ("198.51.100.7", 443, "dns"),                  # an address an S3 name resolved to
    ("10.0.1.20", 3128, "proxy"),                  # the proxy S3 traffic uses
    ("10.0.1.20", 22, None),                       # the proxy host, another port
    ("93.184.216.34", 443, None),                  # not S3
])
def test_which_peers_are_s3(ip, port, why) -> None:
    assert MEMBERSHIP.reason(ip, port) == why


def test_the_kernel_filter_covers_every_rule() -> None:
    nets = set(MEMBERSHIP.networks())
    assert {"52.218.0.0/17", "52.216.0.0/15", "2600:1fa0::/32", "10.0.2.50/32", "10.1.2.60/32",
            "198.51.100.7/32", "10.0.1.20/32"} == nets


def sock(remote: str, port: int = 443, sent: int | None = 1000, received: int | None = 5000,
         inode: int = 11, local_port: int = 40000, state: str = "ESTABLISHED") -> TcpSocket:
    family = "ipv6" if ":" in remote else "ipv4"
    return TcpSocket(family, state, "10.0.1.10", local_port, remote, port, 1000, inode, sent,
                     received)


@pytest.mark.parametrize("previous,now,new,kept", [
    ({}, (100, 200), (100, 200), (100, 200)),                  # new socket: all its bytes
    ({"k": (100, 200)}, (150, 260), (50, 60), (150, 260)),     # seen before: the growth
    ({"k": (100, 200)}, (100, 200), (0, 0), (100, 200)),       # idle: nothing new
    ({"k": (100, 200)}, (10, 20), (10, 20), (10, 20)),         # went down: another socket
    ({"k": (100, 200)}, (None, None), None, None),             # no counters (/proc): skipped
])
def test_bytes_are_counted_once(previous, now, new, kept) -> None:
    s = sock("52.216.8.10", sent=now[0], received=now[1])
    before = {s.key: v for k, v in previous.items()}
    got_new, ledger = count_new_bytes([s], before)
    assert got_new.get(s.key) == new and ledger.get(s.key) == kept


def test_sockets_gone_drop_out_of_the_ledger() -> None:
    gone = sock("52.216.8.10", inode=1)
    live = sock("52.216.8.11", inode=2)
    _, ledger = count_new_bytes([live], {gone.key: (5, 5), live.key: (1, 1)})
    assert set(ledger) == {live.key}


RANGE_INDEX = S3RangeIndex(RANGES)
JAVA = ProcessInfo(4242, "java", 1000)


@pytest.mark.parametrize("remote,port,because,own,expect,path,status,via,nat", [
    ("52.216.8.10", 443, "s3_ranges", False, Expect.PRIVATE, PathKind.PUBLIC, Status.CRITICAL,
     "nat-1", True),
    ("52.216.8.10", 443, "s3_ranges", True, Expect.PRIVATE, PathKind.PUBLIC, Status.OK,
     "nat-1", True),                                          # the agent's own: never a status
    ("52.216.8.10", 443, "s3_ranges", False, Expect.ANY, PathKind.PUBLIC, Status.OK, "nat-1", True),
    ("52.218.1.9", 443, "prefix_list", False, Expect.PRIVATE, PathKind.GATEWAY, Status.OK,
     "vpce-gw", False),
    ("10.0.2.50", 443, "interface_endpoint", False, Expect.GATEWAY, PathKind.INTERFACE,
     Status.CRITICAL, "local", False),
    ("10.0.1.20", 3128, "proxy", False, Expect.PRIVATE, PathKind.PROXY, Status.CRITICAL,
     "proxy 10.0.1.20:3128", False),
])
def test_a_flow_is_judged_like_a_target_address(remote, port, because, own, expect, path,
                                                status, via, nat) -> None:
    flow = judge_flow(sock(remote, port), JAVA, because, FACTS, RANGE_INDEX, expect, own, None, 0)
    assert (flow.path, flow.status, flow.via, flow.through_nat) == (path, status, via, nat)
    assert flow.own is own and flow.process == JAVA


def test_without_inventory_the_path_is_unknown_and_no_status() -> None:
    facts = Facts(identity=IDENTITY, inventory=None, s3_ranges=RANGES,
                  problems=("EC2 DescribeRouteTables denied",))
    flow = judge_flow(sock("52.216.8.10"), JAVA, "s3_ranges", facts, RANGE_INDEX,
                      Expect.PRIVATE, False, None, 0)
    assert flow.path is PathKind.UNKNOWN and flow.status is Status.UNKNOWN
    section = ObservedSection(expect=Expect.PRIVATE, time=0.0, flows=(flow,), source="sock_diag")
    assert section.status is Status.OK and section.bad_flows == ()


def test_describe_names_process_destination_region_path_and_gateway() -> None:
    flow = judge_flow(sock("52.216.8.10"), JAVA, "s3_ranges", FACTS, RANGE_INDEX,
                      Expect.PRIVATE, False, "mybucket.s3.amazonaws.com", 0)
    assert flow.describe() == ("java (pid 4242) -> 52.216.8.10 (mybucket.s3.amazonaws.com) "
                               "S3 us-east-1 public via nat-1")
    nobody = judge_flow(sock("52.218.1.9"), None, "prefix_list", FACTS, RANGE_INDEX,
                        Expect.PRIVATE, False, None, 0)
    assert nobody.describe() == "uid 1000 -> 52.218.1.9 S3 eu-west-1 gateway via vpce-gw"


@pytest.mark.parametrize("region,configured,price,source", [
    ("eu-west-1", None, 0.048, "public price for eu-west-1"),
    ("us-east-1", None, 0.045, "public price for us-east-1"),
    ("me-central-1", None, 0.045, "is not in the agent's price table"),
    ("eu-west-1", 0.03, 0.03, "config (observe.nat_price_per_gb)"),
])
def test_nat_price(region, configured, price, source) -> None:
    got, why = nat_price(region, configured)
    assert got == price and source in why


def test_usd_for_a_gb() -> None:
    assert usd_for(BYTES_PER_GB, 0.045) == 0.045 and usd_for(0, 0.045) == 0.0


def observation(*sockets: TcpSocket, own: tuple[int, ...] = (), at: float = 1000.0,
                ) -> SocketObservation:
    procs = tuple((s.inode, ProcessInfo(99, "agent", 0) if s.inode in own else JAVA)
                  for s in sockets)
    return SocketObservation(time=at, sockets=sockets, processes=procs, own_pid=99,
                             source="sock_diag")


def test_two_looks_totals_nat_cost_and_status() -> None:
    rules = ObserveRules(expect=Expect.PRIVATE)
    public = sock("52.216.8.10", sent=1000, received=2 * BYTES_PER_GB, inode=1)
    gateway = sock("52.218.1.9", sent=10, received=20, inode=2, local_port=40001)
    agent = sock("52.216.8.11", sent=5, received=5, inode=3, local_port=40002)
    unrelated = sock("93.184.216.34", inode=4, local_port=40003)
    state = ObservedState(since=900.0)
    section, state = judge_observation(observation(public, gateway, agent, unrelated, own=(3,)),
                                       FACTS, MEMBERSHIP, state, rules,
                                       answers={"s3.amazonaws.com": ["52.216.8.10"]})
    assert [f.remote_ip for f in section.flows] == ["52.216.8.10", "52.218.1.9", "52.216.8.11"]
    assert section.status is Status.CRITICAL
    assert [f.remote_ip for f in section.bad_flows] == ["52.216.8.10"]   # not the agent's own
    assert section.flows[0].hostname == "s3.amazonaws.com"
    public_totals = section.totals(PathKind.PUBLIC)
    assert public_totals.flows == 2 and public_totals.new_bytes == 1000 + 2 * BYTES_PER_GB + 10
    assert section.totals("gateway").new_bytes == 30
    cost = section.nat_cost
    assert cost.new_bytes == 1000 + 2 * BYTES_PER_GB + 10 and cost.nat_gateways == ("nat-1",)
    assert cost.since == 900.0 and cost.price_per_gb == 0.048
    # Second look: the public connection moved 500 more bytes, the agent's closed.
    public2 = sock("52.216.8.10", sent=1500, received=2 * BYTES_PER_GB, inode=1)
    section2, state2 = judge_observation(observation(public2, gateway, at=1300.0), FACTS,
                                         MEMBERSHIP, state, rules)
    assert section2.totals("public").new_bytes == 500
    assert section2.totals("public").total_bytes == 1500 + 2 * BYTES_PER_GB + 10
    assert section2.totals("gateway").new_bytes == 0 and section2.totals("gateway").total_bytes == 30
    assert section2.nat_cost.new_bytes == 500
    assert section2.nat_cost.total_bytes == 1500 + 2 * BYTES_PER_GB + 10
    assert len(state2.ledger) == 2
    # The name a flow of the host's software used is kept, and named on the next look.
    assert section2.name("S3.amazonaws.com.").used is True
    assert section2.flows[0].hostname == "s3.amazonaws.com"
    assert section2.was_seen("s3.amazonaws.com") and not section2.was_seen("example.com")


def test_summary_line_names_the_flow_first() -> None:
    section, _ = judge_observation(observation(sock("52.216.8.10")), FACTS, MEMBERSHIP,
                                   ObservedState(since=0.0), ObserveRules())
    assert summary_line(Status.CRITICAL, [], [], section) == (
        "CRITICAL: java (pid 4242) -> 52.216.8.10 S3 us-east-1 public via nat-1; expected "
        "private")


def test_no_sockets_seen_at_all_is_a_warning() -> None:
    section = ObservedSection(expect=Expect.PRIVATE, time=0.0, source="none",
                              errors=("netlink refused; /proc/net/tcp unreadable",))
    assert section.status is Status.WARNING


def test_the_agents_own_lookups_are_not_the_hosts() -> None:
    window = LookupWindow(("s3.amazonaws.com",), started=100.0, ended=101.0)
    own = DnsSighting(100.5, "s3.amazonaws.com", ("52.216.8.10",))
    later = DnsSighting(150.0, "s3.amazonaws.com", ("52.216.8.10",))
    other = DnsSighting(100.5, "logs.s3.eu-west-1.amazonaws.com", ("52.218.1.9",))
    assert host_sightings([own, later, other], [window]) == (later, other)


@pytest.mark.parametrize("sighting,s3", [
    (DnsSighting(1, "mybucket.s3.eu-west-1.amazonaws.com", ("52.218.1.9",)), True),
    (DnsSighting(1, "files.example.com", ("52.216.8.10",), ("files.s3.amazonaws.com",)), True),
    (DnsSighting(1, "files.example.com", ("52.216.8.10",)), True),   # an S3 address
    (DnsSighting(1, "files.example.com", ("198.51.100.7",)), False),  # only "dns": circular
    (DnsSighting(1, "www.example.com", ("93.184.216.34",)), False),
])
def test_which_dns_responses_are_s3(sighting, s3) -> None:
    assert is_s3_sighting(sighting, MEMBERSHIP) is s3


def test_names_expire_and_are_bounded() -> None:
    rules = ObserveRules(max_names=2, name_max_age_seconds=100.0)
    records = (NameRecord("old.s3.amazonaws.com", ("52.216.0.1",), 0.0, 10.0, resolved=True),)
    sightings = [DnsSighting(t, f"b{t}.s3.amazonaws.com", ("52.216.0.2",)) for t in (200, 210, 220)]
    kept = update_names(records, sightings, {"used.s3.amazonaws.com": ["52.216.0.3"]}, 230.0,
                        rules)
    assert [r.name for r in kept] == ["used.s3.amazonaws.com", "b220.s3.amazonaws.com"]
    assert kept[0].used_at == 230.0 and not kept[0].resolved and kept[1].resolved


def test_a_name_the_host_resolved_wins_over_the_agents_answer() -> None:
    records = [NameRecord("mybucket.s3.amazonaws.com", ("52.216.8.10",), 1.0, 5.0, resolved=True)]
    index = hostname_index(records, {"s3.amazonaws.com": ["52.216.8.10", "52.216.8.11"]})
    assert index == {"52.216.8.10": "mybucket.s3.amazonaws.com",
                     "52.216.8.11": "s3.amazonaws.com"}


def test_discovered_targets_are_bounded_and_say_so() -> None:
    records = [NameRecord(f"b{i}.s3.amazonaws.com", (), 0.0, float(i), resolved=True)
               for i in range(5)]
    records.append(NameRecord("www.example.com", (), 0.0, 99.0, resolved=True))   # not S3
    records.append(NameRecord("s3.eu-west-1.amazonaws.com", (), 0.0, 98.0, resolved=True))
    found = discovered_targets(records, 2, ["s3.eu-west-1.amazonaws.com"], Expect.PRIVATE)
    assert [d.target.host for d in found] == ["b4.s3.amazonaws.com", "b3.s3.amazonaws.com"]
    assert found[0].target.name == "observed-b4.s3.amazonaws.com"
    assert found[0].target.bucket == "b4" and found[0].target.expect is Expect.PRIVATE
    assert "at most 2 such name(s)" in found[0].evidence and "5 candidate(s)" in found[0].evidence
    assert discovered_targets(records, 0, [], Expect.PRIVATE) == ()
