"""Table tests of the hostname-form rules (issue 4 §2) through the verdict engine:
acceleration, Multi-Region Access Points, dual-stack/IPv6, interface-endpoint private DNS modes
and a bucket in another region. Pure: no network."""

from __future__ import annotations

from dataclasses import replace

import pytest

from s3_route_agent.engine.model import (DnsAnswer, Expect, Facts, Identity, Inventory, NetworkInterface, PathKind,
                         PrefixList, ResolvedAddress, Route, RouteTable, RouteTargetKind, S3Range,
                         Status, Target, VpcEndpoint)
from s3_route_agent.engine.verdict import verdict_for_target

K = RouteTargetKind
REGION = "eu-west-1"
VPC = "vpc-1"
S3_SERVICE = f"com.amazonaws.{REGION}.s3"
MRAP_SERVICE = "com.amazonaws.s3-global.accesspoint"
S3_PL = PrefixList("pl-s3", S3_SERVICE, 1, ("198.51.100.0/25", "2001:db8:e1::/48"))
GW = VpcEndpoint("vpce-gw", "Gateway", S3_SERVICE, "available", VPC, route_table_ids=("rtb-app",))
GW_DUAL = replace(GW, ip_address_type="dualstack")
IFACE = VpcEndpoint("vpce-if", "Interface", S3_SERVICE, "available", VPC,
                    network_interface_ids=("eni-if",))
MRAP_EP = VpcEndpoint("vpce-mrap", "Interface", MRAP_SERVICE, "available", VPC,
                      network_interface_ids=("eni-mrap",), private_dns_enabled=True)
MRAP_EP_NO_DNS = replace(MRAP_EP, private_dns_enabled=False)
IFACE_ENI = NetworkInterface("eni-if", VPC, "subnet-e", "vpc_endpoint", "", ("10.0.2.50",),
                             "vpce-if")
MRAP_ENI = NetworkInterface("eni-mrap", VPC, "subnet-e", "vpc_endpoint", "", ("10.0.2.70",),
                            "vpce-mrap")
ROUTES = (Route("10.0.0.0/16", "local", K.LOCAL), Route("0.0.0.0/0", "nat-1", K.NAT_GATEWAY),
          Route("::/0", "eigw-1", K.EGRESS_ONLY_INTERNET_GATEWAY),
          Route("pl-s3", "vpce-gw", K.GATEWAY_ENDPOINT))
RANGES = (S3Range("198.51.100.0/25", REGION), S3Range("203.0.113.0/25", "us-east-1"),
          S3Range("2001:db8:e1::/48", REGION))
MRAP_HOST = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com"
ACCEL_HOST = "my-bucket.s3-accelerate.amazonaws.com"
CLOUDFRONT_IP = "192.0.2.80"      # not S3, reached through the NAT gateway


def facts(endpoints=(GW, IFACE), interfaces=(IFACE_ENI,), bucket_regions=()) -> Facts:
    inventory = Inventory(REGION, VPC, "subnet-1", RouteTable("rtb-app", VPC, "explicit", ROUTES),
                          (S3_PL,), tuple(endpoints), tuple(interfaces), fetched_at=1.0,
                          s3_prefix_list_id="pl-s3")
    return Facts(identity=Identity(REGION, VPC, "subnet-1"), inventory=inventory,
                 s3_ranges=RANGES, bucket_regions=tuple(bucket_regions))


def answer(host: str, *ips: str) -> DnsAnswer:
    return DnsAnswer(host, tuple(ResolvedAddress(ip, "ipv6" if ":" in ip else "ipv4", 60)
                                 for ip in ips))


def verdict(host: str, ips: tuple[str, ...], f: Facts, expect: Expect = Expect.PRIVATE,
            bucket: str | None = None):
    return verdict_for_target(Target("t", host, expect, bucket), answer(host, *ips), f)


def text(v) -> str:
    return " ".join(v.evidence)


# (id, host, addresses, facts, expect, bucket, path, status, words in reason, words in evidence)
CASES = [
    ("accelerate via NAT is CRITICAL with the reason", ACCEL_HOST, (CLOUDFRONT_IP,), facts(),
     Expect.PRIVATE, None, PathKind.PUBLIC, Status.CRITICAL, "Transfer Acceleration",
     "CloudFront edge"),
    ("accelerate expected public is fine", ACCEL_HOST, (CLOUDFRONT_IP,), facts(), Expect.PUBLIC,
     None, PathKind.PUBLIC, Status.OK, "public via nat-1", "always public"),
    ("accelerate is CRITICAL even when its address routes privately", ACCEL_HOST,
     ("198.51.100.20",), facts(), Expect.GATEWAY, None, PathKind.GATEWAY, Status.CRITICAL,
     "public by design", "never take a VPC endpoint"),
    ("MRAP through its s3-global interface endpoint", MRAP_HOST, ("10.0.2.70",),
     facts(endpoints=(GW, IFACE, MRAP_EP), interfaces=(IFACE_ENI, MRAP_ENI)), Expect.PRIVATE,
     None, PathKind.INTERFACE, Status.OK, "interface endpoint vpce-mrap", "SigV4A"),
    ("MRAP on a regional S3 interface endpoint", MRAP_HOST, ("10.0.2.50",), facts(),
     Expect.PRIVATE, None, PathKind.INTERFACE, Status.CRITICAL, "non-MRAP interface endpoint vpce-if",
     "cannot serve a Multi-Region"),
    ("MRAP public, VPC has no MRAP endpoint", MRAP_HOST, (CLOUDFRONT_IP,), facts(),
     Expect.PRIVATE, None, PathKind.PUBLIC, Status.CRITICAL, "expected private",
     "has none; create one"),
    ("MRAP public, MRAP endpoint without private DNS", MRAP_HOST, (CLOUDFRONT_IP,),
     facts(endpoints=(GW, MRAP_EP_NO_DNS), interfaces=(MRAP_ENI,)), Expect.PRIVATE, None,
     PathKind.PUBLIC, Status.CRITICAL, "expected private", "enable private DNS on vpce-mrap"),
    ("MRAP never through a gateway endpoint", MRAP_HOST, ("198.51.100.30",), facts(),
     Expect.PRIVATE, None, PathKind.GATEWAY, Status.CRITICAL, "cannot use a gateway endpoint",
     "gateway endpoints cannot carry it"),
    ("dual-stack AAAA vs ipv4 gateway endpoint", "b.s3.dualstack.eu-west-1.amazonaws.com",
     ("198.51.100.12", "2001:db8:e1::12"), facts(), Expect.PRIVATE, None, PathKind.MIXED,
     Status.WARNING, "mixed", "IpAddressType ipv4: it carries IPv4 only"),
    ("dual-stack AAAA vs dualstack gateway endpoint", "b.s3.dualstack.eu-west-1.amazonaws.com",
     ("198.51.100.12", "2001:db8:e1::12"), facts(endpoints=(GW_DUAL, IFACE)), Expect.PRIVATE,
     None, PathKind.GATEWAY, Status.OK, "gateway endpoint vpce-gw", "carries IPv6 too"),
    ("dual-stack without AAAA", "b.s3.dualstack.eu-west-1.amazonaws.com", ("198.51.100.12",),
     facts(), Expect.PRIVATE, None, PathKind.GATEWAY, Status.OK, "vpce-gw", "no AAAA answer"),
    ("private DNS for all resolvers, answered", "s3.eu-west-1.amazonaws.com", ("10.0.2.50",),
     facts(endpoints=(GW, replace(IFACE, private_dns_enabled=True))), Expect.PRIVATE, None,
     PathKind.INTERFACE, Status.OK, "vpce-if", "private DNS for all resolvers: s3.eu-west-1"),
    ("private DNS for all resolvers, not answered", "s3.eu-west-1.amazonaws.com",
     ("198.51.100.10",), facts(endpoints=(GW, replace(IFACE, private_dns_enabled=True))),
     Expect.PRIVATE, None, PathKind.GATEWAY, Status.OK, "vpce-gw", "does not use the VPC's resolver"),
    ("private DNS only for inbound resolvers", "b.s3.eu-west-1.amazonaws.com", ("198.51.100.11",),
     facts(endpoints=(GW, replace(IFACE, private_dns_enabled=True,
                                  private_dns_only_for_inbound_resolver_endpoint=True))),
     Expect.PRIVATE, None, PathKind.GATEWAY, Status.OK, "vpce-gw",
     "only for inbound resolver endpoints"),
    ("private DNS off", "s3.eu-west-1.amazonaws.com", ("198.51.100.10",), facts(),
     Expect.INTERFACE, None, PathKind.GATEWAY, Status.CRITICAL, "expected interface",
     "enable private DNS on vpce-if"),
    ("private DNS never covers the global name", "b.s3.amazonaws.com", ("203.0.113.11",),
     facts(endpoints=(GW, replace(IFACE, private_dns_enabled=True))), Expect.PRIVATE, None,
     PathKind.PUBLIC, Status.CRITICAL, "S3 us-east-1", "does not cover global names"),
    ("private DNS never covers dash-region names", "b.s3-eu-west-1.amazonaws.com",
     ("198.51.100.11",), facts(endpoints=(GW, replace(IFACE, private_dns_enabled=True))),
     Expect.PRIVATE, None, PathKind.GATEWAY, Status.OK, "vpce-gw", "does not cover dash-region"),
    ("bucket in another region bypasses the gateway endpoint", "logs.s3.amazonaws.com",
     ("203.0.113.11",), facts(bucket_regions=(("logs", "us-east-1"),)), Expect.PRIVATE, "logs",
     PathKind.PUBLIC, Status.CRITICAL, "expected private", "Bucket logs is in us-east-1"),
    ("bucket region taken from the hostname when the target names none",
     "us-west-2-logs.s3.eu-west-1.amazonaws.com", ("198.51.100.11",),
     facts(bucket_regions=(("us-west-2-logs", "us-west-2"),)), Expect.PRIVATE, None,
     PathKind.GATEWAY, Status.CRITICAL, "its data moves over S3 of us-west-2",
     "Bucket us-west-2-logs is in us-west-2"),
    ("a bucket in another region is fine when public is expected",
     "us-west-2-logs.s3.eu-west-1.amazonaws.com", ("198.51.100.11",),
     facts(bucket_regions=(("us-west-2-logs", "us-west-2"),)), Expect.ANY, None,
     PathKind.GATEWAY, Status.OK, "vpce-gw", "Bucket us-west-2-logs is in us-west-2"),
    ("bucket in this region says nothing", "logs.s3.eu-west-1.amazonaws.com", ("198.51.100.11",),
     facts(bucket_regions=(("logs", REGION),)), Expect.PRIVATE, "logs", PathKind.GATEWAY, Status.OK,
     "vpce-gw", ""),
]


@pytest.mark.parametrize("host,ips,f,expect,bucket,path,status,in_reason,in_evidence",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_form_rules(host, ips, f, expect, bucket, path, status, in_reason, in_evidence):
    v = verdict(host, ips, f, expect, bucket)
    assert v.path is path
    assert v.status is status
    assert in_reason in v.reason
    assert in_evidence in text(v)


def test_same_region_bucket_adds_no_bypass_note():
    v = verdict("logs.s3.eu-west-1.amazonaws.com", ("198.51.100.11",),
                facts(bucket_regions=(("logs", REGION),)), bucket="logs")
    assert "GetBucketLocation" not in text(v)


# --- issue 10 §3: S3 Express, Object Lambda, Outposts, FIPS, the global name with a bucket -----

EXPRESS_SERVICE = f"com.amazonaws.{REGION}.s3express"
EXPRESS_PL = PrefixList("pl-s3e", EXPRESS_SERVICE, 1, ("198.51.100.128/26",))
EXPRESS_GW = VpcEndpoint("vpce-s3e", "Gateway", EXPRESS_SERVICE, "available", VPC,
                         route_table_ids=("rtb-app",))
EXPRESS_ROUTES = ROUTES + (Route("pl-s3e", "vpce-s3e", K.GATEWAY_ENDPOINT),)
# S3 of eu-west-1 that is in no prefix list (Object Lambda's and S3 Express's, say).
OFF_LIST_RANGES = RANGES + (S3Range("198.51.100.128/25", REGION),)
ZONAL = "data--euw1-az1--x-s3.s3express-euw1-az1.eu-west-1.amazonaws.com"
ZONAL_FIPS_DS = "data--euw1-az1--x-s3.s3express-fips-euw1-az1.dualstack.eu-west-1.amazonaws.com"
EXPRESS_CONTROL = "s3express-control.eu-west-1.amazonaws.com"
OLAP = "olap-111122223333.s3-object-lambda.eu-west-1.amazonaws.com"
OUTPOSTS_AP = "ap-111122223333.op-01234567890abcdef.s3-outposts.eu-west-1.amazonaws.com"
OUTPOSTS_ENI = NetworkInterface("eni-op", VPC, "subnet-op", "interface", "", ("10.0.9.20",), None)


def routed_facts(routes=ROUTES, endpoints=(GW, IFACE), interfaces=(IFACE_ENI,),
                 prefix_lists=(S3_PL,), ranges=OFF_LIST_RANGES) -> Facts:
    inventory = Inventory(REGION, VPC, "subnet-1", RouteTable("rtb-app", VPC, "explicit", routes),
                          tuple(prefix_lists), tuple(endpoints), tuple(interfaces), fetched_at=1.0,
                          s3_prefix_list_id="pl-s3")
    return Facts(identity=Identity(REGION, VPC, "subnet-1"), inventory=inventory, s3_ranges=ranges)


PRIVATE_DNS_ON = replace(IFACE, private_dns_enabled=True)
# (id, host, addresses, facts, expect, path, status, words in reason, words that must be in the
#  evidence, words that must not be)
SERVICE_CASES = [
    ("S3 Express zonal name through its s3express gateway endpoint", ZONAL, ("198.51.100.140",),
     routed_facts(EXPRESS_ROUTES, (GW, EXPRESS_GW), prefix_lists=(S3_PL, EXPRESS_PL)),
     Expect.GATEWAY, PathKind.GATEWAY, Status.OK, "gateway endpoint vpce-s3e",
     f"carried by gateway endpoint vpce-s3e of {EXPRESS_SERVICE}", "endpoint route was removed"),
    ("S3 Express FIPS dual-stack name through its gateway endpoint", ZONAL_FIPS_DS,
     ("198.51.100.140",),
     routed_facts(EXPRESS_ROUTES, (GW, EXPRESS_GW), prefix_lists=(S3_PL, EXPRESS_PL)),
     Expect.GATEWAY, PathKind.GATEWAY, Status.OK, "vpce-s3e", EXPRESS_SERVICE, "FIPS names such"),
    ("S3 Express without an s3express gateway endpoint names that service, not ...s3", ZONAL,
     ("198.51.100.140",), routed_facts(), Expect.GATEWAY, PathKind.PUBLIC, Status.CRITICAL,
     "expected gateway", f"vpc-1 has no gateway endpoint for {EXPRESS_SERVICE}",
     "re-associate rtb-app with vpce-gw"),
    ("S3 Express gateway endpoint that lost its route", EXPRESS_CONTROL, ("198.51.100.140",),
     routed_facts(ROUTES, (GW, EXPRESS_GW)), Expect.PRIVATE, PathKind.PUBLIC, Status.CRITICAL,
     "expected private", f"Gateway endpoint vpce-s3e ({EXPRESS_SERVICE}) lists rtb-app, but the "
     "table has no route to its prefix list", "vpce-gw lists rtb-app"),
    ("S3 Express gateway endpoint not associated with the table", ZONAL, ("198.51.100.140",),
     routed_facts(ROUTES, (GW, replace(EXPRESS_GW, route_table_ids=("rtb-other",)))),
     Expect.PRIVATE, PathKind.PUBLIC, Status.CRITICAL, "expected private",
     f"Gateway endpoint vpce-s3e ({EXPRESS_SERVICE}) exists but is not associated with rtb-app",
     "Gateway endpoint vpce-gw"),
    ("S3 Express private DNS: an S3 interface endpoint never answers it", EXPRESS_CONTROL,
     ("198.51.100.140",), routed_facts(EXPRESS_ROUTES, (GW, EXPRESS_GW, PRIVATE_DNS_ON),
                                       prefix_lists=(S3_PL, EXPRESS_PL)),
     Expect.PRIVATE, PathKind.GATEWAY, Status.OK, "vpce-s3e",
     "does not cover s3express-control names", "resolves to its network interfaces"),
    ("Object Lambda on the public path: no endpoint-route explanation", OLAP, ("198.51.100.140",),
     routed_facts(), Expect.PRIVATE, PathKind.PUBLIC, Status.CRITICAL, "expected private",
     "Object Lambda does not support gateway endpoints", "endpoint route was removed"),
    ("the same address under a regular S3 name is explained by the removed route",
     "b.s3.eu-west-1.amazonaws.com", ("198.51.100.140",), routed_facts(), Expect.PRIVATE,
     PathKind.PUBLIC, Status.CRITICAL, "expected private", "endpoint route was removed", ""),
    ("Object Lambda expected public is fine", OLAP, ("198.51.100.140",), routed_facts(),
     Expect.PUBLIC, PathKind.PUBLIC, Status.OK, "public via nat-1",
     "its address ranges are not in the S3 prefix list", "not associated"),
    ("Outposts data goes to the Outposts endpoint's interfaces, never a VPC endpoint", OUTPOSTS_AP,
     ("10.0.9.20",), routed_facts(interfaces=(IFACE_ENI, OUTPOSTS_ENI)), Expect.ANY,
     PathKind.TRANSIT, Status.OK, "transit", "never through a gateway endpoint or PrivateLink",
     "endpoint route was removed"),
    ("Outposts management name", "s3-outposts.eu-west-1.amazonaws.com", ("198.51.100.140",),
     routed_facts(), Expect.PRIVATE, PathKind.PUBLIC, Status.CRITICAL, "expected private",
     "AWS PrivateLink for S3 on Outposts", "endpoint route was removed"),
    ("FIPS regional name: private DNS does not cover it", "b.s3-fips.eu-west-1.amazonaws.com",
     ("198.51.100.11",), routed_facts(endpoints=(GW, PRIVATE_DNS_ON)), Expect.PRIVATE,
     PathKind.GATEWAY, Status.OK, "vpce-gw", "does not cover FIPS names",
     "private DNS for all resolvers"),
    ("FIPS access point name: private DNS does not cover it",
     "ap-111122223333.s3-accesspoint-fips.eu-west-1.amazonaws.com", ("198.51.100.11",),
     routed_facts(endpoints=(GW, PRIVATE_DNS_ON)), Expect.PRIVATE, PathKind.GATEWAY, Status.OK,
     "vpce-gw", "does not cover FIPS names", "did not resolve to its network interfaces"),
    ("FIPS control name: private DNS does not cover it",
     "111122223333.s3-control-fips.eu-west-1.amazonaws.com", ("198.51.100.11",),
     routed_facts(endpoints=(GW, PRIVATE_DNS_ON)), Expect.PRIVATE, PathKind.GATEWAY, Status.OK,
     "vpce-gw", "does not cover FIPS names", "did not resolve to its network interfaces"),
    ("the non-FIPS access point name is covered", "ap-111122223333.s3-accesspoint.eu-west-1."
     "amazonaws.com", ("198.51.100.11",), routed_facts(endpoints=(GW, PRIVATE_DNS_ON)),
     Expect.PRIVATE, PathKind.GATEWAY, Status.OK, "vpce-gw",
     "did not resolve to its network interfaces", "does not cover"),
    ("bucket on the global name: DNS answered with the bucket's region", "logs.s3.amazonaws.com",
     ("198.51.100.11",), routed_facts(), Expect.PRIVATE, PathKind.GATEWAY, Status.OK, "vpce-gw",
     "DNS answered logs.s3.amazonaws.com with 198.51.100.11: S3 of eu-west-1",
     "it resolves to us-east-1"),
    ("the global name itself answers from us-east-1", "s3.amazonaws.com", ("203.0.113.10",),
     routed_facts(), Expect.PRIVATE, PathKind.PUBLIC, Status.CRITICAL, "S3 us-east-1",
     "it resolves to us-east-1", "DNS answered"),
]


@pytest.mark.parametrize("host,ips,f,expect,path,status,in_reason,in_evidence,not_in_evidence",
                         [c[1:] for c in SERVICE_CASES], ids=[c[0] for c in SERVICE_CASES])
def test_service_rules(host, ips, f, expect, path, status, in_reason, in_evidence,
                       not_in_evidence):
    v = verdict(host, ips, f, expect)
    everything = text(v) + " " + " ".join(e for a in v.addresses for e in a.evidence)
    assert (v.path, v.status) == (path, status), everything
    assert in_reason in v.reason
    assert in_evidence in everything
    if not_in_evidence:
        assert not_in_evidence not in everything
# --- issue 10: cross-Region PrivateLink and IPv6 against what an endpoint carries ---------------

WEST = "us-west-2"
XR = VpcEndpoint("vpce-xr", "Interface", f"com.amazonaws.{WEST}.s3", "available", VPC,
                 network_interface_ids=("eni-xr",))
XR_ENI = NetworkInterface("eni-xr", VPC, "subnet-e", "vpc_endpoint", "", ("10.0.2.70",),
                          "vpce-xr")
XR_HOST = f"far-bucket.bucket.vpce-xr-abcdefgh.s3.{WEST}.vpce.amazonaws.com"


def test_cross_region_endpoint_addresses_are_interface_with_the_service_region():
    f = facts(endpoints=(GW, IFACE, XR), interfaces=(IFACE_ENI, XR_ENI),
              bucket_regions=(("far-bucket", WEST),))
    v = verdict(XR_HOST, ("10.0.2.70",), f, Expect.INTERFACE, bucket="far-bucket")
    assert (v.path, v.status) == (PathKind.INTERFACE, Status.OK)
    assert any(f"carries S3 of {WEST}" in e for e in v.addresses[0].evidence)
    # The "bucket in another region" CRITICAL does not fire: the endpoint carries that region.
    assert any(f"cross-Region interface endpoint vpce-xr carries S3 of {WEST}" in e
               for e in v.evidence)


def test_bucket_in_another_region_without_a_cross_region_endpoint_stays_critical():
    f = facts(bucket_regions=(("far-bucket", WEST),))
    v = verdict("far-bucket.s3.eu-west-1.amazonaws.com", ("198.51.100.10",), f, Expect.PRIVATE,
                bucket="far-bucket")
    assert v.status is Status.CRITICAL and f"is in {WEST}" in v.reason
    # An endpoint serving this region does not carry the bucket's region either.
    v = verdict(XR_HOST.replace("vpce-xr", "vpce-if"), ("10.0.2.50",), f, Expect.INTERFACE,
                bucket="far-bucket")
    assert v.status is Status.CRITICAL


def test_cross_region_endpoint_private_dns_answers_its_service_regions_names():
    xr_dns = replace(XR, private_dns_enabled=True,
                     private_dns_only_for_inbound_resolver_endpoint=False)
    f = facts(endpoints=(GW, IFACE, xr_dns), interfaces=(IFACE_ENI, XR_ENI))
    v = verdict(f"s3.{WEST}.amazonaws.com", ("10.0.2.70",), f, Expect.INTERFACE)
    assert v.path is PathKind.INTERFACE
    assert any("vpce-xr has private DNS for all resolvers" in e for e in v.evidence)
    assert not any("vpce-if" in e for e in v.evidence)     # eu-west-1's endpoint is not asked


IFACE_DUAL = replace(IFACE, ip_address_type="dualstack", dns_record_ip_type="ipv4",
                     private_dns_enabled=True,
                     private_dns_only_for_inbound_resolver_endpoint=False)
IFACE_DUAL_ENI = replace(IFACE_ENI, addresses=("10.0.2.50", "2001:db8:a::50"))
PUBLIC_V6 = "2001:db8:e1::12"


@pytest.mark.parametrize("case,endpoint,eni,ips,path,phrase", [
    ("ipv4 endpoint, public AAAA beside its A", IFACE, IFACE_ENI, ("10.0.2.50", PUBLIC_V6),
     PathKind.MIXED, "carries no IPv6"),
    ("dual-stack endpoint publishing A records only", IFACE_DUAL, IFACE_DUAL_ENI,
     ("10.0.2.50", PUBLIC_V6), PathKind.MIXED, "DnsRecordIpType is ipv4"),
    ("dual-stack endpoint: its own AAAA is interface", replace(IFACE_DUAL,
                                                              dns_record_ip_type="dualstack"),
     IFACE_DUAL_ENI, ("10.0.2.50", "2001:db8:a::50"), PathKind.INTERFACE, None),
], ids=["ipv4 endpoint", "A records only", "dual-stack"])
def test_aaaa_answers_against_what_the_interface_endpoint_carries(case, endpoint, eni, ips,
                                                                  path, phrase):
    f = facts(endpoints=(GW, endpoint), interfaces=(eni,))
    v = verdict("s3.eu-west-1.amazonaws.com", ips, f, Expect.INTERFACE)
    assert v.path is path
    if phrase:
        assert any(phrase in e for e in v.evidence), v.evidence
    else:
        assert v.status is Status.OK
        assert any("carries this IPv6 traffic" in e for a in v.addresses for e in a.evidence)


def test_resource_type_endpoints_are_never_s3_endpoints():
    resource = VpcEndpoint("vpce-res", "Resource", S3_SERVICE, "available", VPC)
    gwlb = VpcEndpoint("vpce-lb", "GatewayLoadBalancer", S3_SERVICE, "available", VPC)
    assert not resource.serves_s3_of(REGION) and not gwlb.serves_s3_of()
    assert XR.serves_s3_of(WEST) and not XR.serves_s3_of(REGION)
    assert replace(XR, service_region=WEST).service_region_served == WEST
