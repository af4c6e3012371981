"""DNS collector and local DNS server, tested against real sockets on 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.nameserver
import dns.query
import dns.rcode
import dns.resolver
import pytest

from s3_route_agent.collectors.dns_lookup import (
    DnsAnswer,
    DnsSettings,
    make_resolver,
    resolve_host,
)
from s3_route_agent.devenv.localenv.dns_server import DnsZone, LocalDnsServer, ReceivedQuery

pytestmark = pytest.mark.timeout(20)

REGIONAL = "s3.eu-west-1.amazonaws.com"
REGIONAL_IPS = ("52.218.16.10", "52.218.16.11")
DUAL_STACK = "bucket.s3.dualstack.eu-west-1.amazonaws.com"
DUAL_STACK_V6 = "2a05:d050:c0::1"
IPV6_ONLY = "v6only.example.test"
VPCE_WILDCARD = "*.vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com"
VPCE_EXACT = "control.vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com"
VPCE_ENI_IPS = ("10.0.1.25", "10.0.2.25")
SHORT_TIMEOUT_SECONDS = 0.3


def build_zone() -> DnsZone:
    """The records every test in this module resolves against."""
    zone = DnsZone()
    zone.add_a(REGIONAL, *REGIONAL_IPS, ttl=60)
    zone.add_cname("bucket.s3.eu-west-1.amazonaws.com", REGIONAL, ttl=300)
    zone.add_cname("hop1.example.test", "hop2.example.test", ttl=300)
    zone.add_cname("hop2.example.test", "final.example.test", ttl=30)
    zone.add_a("final.example.test", "192.0.2.7", ttl=120)
    zone.add_cname("short-alias.example.test", "long-lived.example.test", ttl=15)
    zone.add_a("long-lived.example.test", "192.0.2.8", ttl=3600)
    zone.add_cname("dangling.example.test", "missing-target.example.test")
    zone.add_cname("to-broken.example.test", "broken.example.test")
    zone.add_a(VPCE_WILDCARD, *VPCE_ENI_IPS, ttl=60)
    zone.add_a(VPCE_EXACT, "10.0.9.9", ttl=60)
    zone.add_a(DUAL_STACK, "52.218.20.1", ttl=60)
    zone.add_aaaa(DUAL_STACK, DUAL_STACK_V6, ttl=45)
    zone.add_aaaa(IPV6_ONLY, "2001:db8::5", ttl=60)
    zone.add_a("MixedCase.Example.TEST.", "192.0.2.9")
    zone.add_a("many.example.test", *(f"198.51.100.{n}" for n in range(1, 101)))
    zone.set_behaviour("broken.example.test", "servfail")
    zone.set_behaviour("forbidden.example.test", "refused")
    zone.set_behaviour("silent.example.test", "timeout")
    return zone


@pytest.fixture(scope="module")
def dns_server() -> Iterator[LocalDnsServer]:
    """One local DNS server for the module."""
    with LocalDnsServer(build_zone()) as server:
        yield server


@pytest.fixture()
def resolver(dns_server: LocalDnsServer) -> dns.resolver.Resolver:
    """A resolver pointed at the local server with a short timeout."""
    return make_resolver(
        DnsSettings(
            nameservers=(dns_server.address,),
            port=dns_server.port,
            timeout_seconds=SHORT_TIMEOUT_SECONDS,
        )
    )


def stepping_clock(*readings: float) -> Callable[[], float]:
    """A clock that returns *readings* one after another."""
    remaining = iter(readings)
    return lambda: next(remaining)


def ips_of(answer: DnsAnswer, family: str) -> set[str]:
    """The addresses of one family in *answer*."""
    return {address.ip for address in answer.addresses if address.family == family}


# --- success paths -------------------------------------------------------------------------


def test_a_record_resolves_with_ttl_family_and_answering_nameserver(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer
) -> None:
    answer = resolve_host(resolver, REGIONAL)

    assert answer.failure is None
    assert answer.ok
    assert ips_of(answer, "ipv4") == set(REGIONAL_IPS)
    assert {address.ttl for address in answer.addresses} == {60}
    assert answer.cname_chain == ()
    assert answer.nameserver == f"127.0.0.1:{dns_server.port}" == dns_server.endpoint
    assert answer.host == REGIONAL


def test_a_without_aaaa_is_success_and_aaaa_was_asked(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer
) -> None:
    dns_server.clear_queries()

    answer = resolve_host(resolver, REGIONAL, query_ipv6=True)

    assert answer.failure is None
    assert ips_of(answer, "ipv6") == set()
    assert ReceivedQuery(REGIONAL, "AAAA") in dns_server.queries


def test_query_ipv6_false_sends_no_aaaa_query(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer
) -> None:
    dns_server.clear_queries()

    answer = resolve_host(resolver, DUAL_STACK, query_ipv6=False)

    assert ips_of(answer, "ipv6") == set()
    assert ips_of(answer, "ipv4") == {"52.218.20.1"}
    assert dns_server.queries == [ReceivedQuery(DUAL_STACK, "A")]


def test_dual_stack_host_reports_both_families_with_their_ttls(
    resolver: dns.resolver.Resolver,
) -> None:
    answer = resolve_host(resolver, DUAL_STACK)

    assert answer.failure is None
    by_ip = {address.ip: address for address in answer.addresses}
    assert by_ip["52.218.20.1"].family == "ipv4"
    assert by_ip["52.218.20.1"].ttl == 60
    assert by_ip[DUAL_STACK_V6].family == "ipv6"
    assert by_ip[DUAL_STACK_V6].ttl == 45


def test_aaaa_only_host_is_success_with_ipv6_addresses(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, IPV6_ONLY)

    assert answer.failure is None
    assert ips_of(answer, "ipv4") == set()
    assert ips_of(answer, "ipv6") == {"2001:db8::5"}


def test_cname_chain_is_reported_in_order_with_final_addresses(
    resolver: dns.resolver.Resolver,
) -> None:
    answer = resolve_host(resolver, "hop1.example.test")

    assert answer.cname_chain == ("hop2.example.test", "final.example.test")
    assert ips_of(answer, "ipv4") == {"192.0.2.7"}


def test_bucket_alias_resolves_through_cname_to_regional_endpoint(
    resolver: dns.resolver.Resolver,
) -> None:
    answer = resolve_host(resolver, "bucket.s3.eu-west-1.amazonaws.com")

    assert answer.cname_chain == (REGIONAL,)
    assert ips_of(answer, "ipv4") == set(REGIONAL_IPS)


def test_ttl_is_the_lowest_along_the_cname_chain(resolver: dns.resolver.Resolver) -> None:
    through_short_cname = resolve_host(resolver, "short-alias.example.test")
    through_long_cnames = resolve_host(resolver, "hop1.example.test")

    assert [address.ttl for address in through_short_cname.addresses] == [15]
    assert [address.ttl for address in through_long_cnames.addresses] == [30]


@pytest.mark.parametrize(
    "host",
    [
        "bucket.vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com",
        "accesspoint.vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com",
        "my-bucket.bucket.vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com",
    ],
)
def test_wildcard_matches_one_or_more_labels(resolver: dns.resolver.Resolver, host: str) -> None:
    answer = resolve_host(resolver, host)

    assert answer.failure is None
    assert ips_of(answer, "ipv4") == set(VPCE_ENI_IPS)


def test_exact_name_wins_over_wildcard(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, VPCE_EXACT)

    assert ips_of(answer, "ipv4") == {"10.0.9.9"}


def test_wildcard_does_not_match_its_own_parent_name(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, "vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com")

    assert answer.addresses == ()
    assert answer.failure is not None
    assert answer.failure.kind == "no_data"


def test_names_are_case_insensitive_both_ways(resolver: dns.resolver.Resolver) -> None:
    upper_query = resolve_host(resolver, "S3.EU-WEST-1.AmazonAWS.com")
    lower_query_of_upper_record = resolve_host(resolver, "mixedcase.example.test")

    assert ips_of(upper_query, "ipv4") == set(REGIONAL_IPS)
    assert ips_of(lower_query_of_upper_record, "ipv4") == {"192.0.2.9"}


def test_trailing_dot_host_resolves_like_plain_host(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, REGIONAL + ".")

    assert ips_of(answer, "ipv4") == set(REGIONAL_IPS)


def test_large_answer_is_truncated_over_udp_and_fetched_over_tcp(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer
) -> None:
    udp_reply = dns.query.udp(
        dns.message.make_query("many.example.test", "A"),
        dns_server.address,
        port=dns_server.port,
        timeout=2,
        ignore_trailing=True,
    )
    answer = resolve_host(resolver, "many.example.test", query_ipv6=False)

    assert udp_reply.flags & dns.flags.TC
    assert len(answer.addresses) == 100


# --- failures, each of a distinct kind -----------------------------------------------------


def test_nxdomain_when_name_does_not_exist(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer
) -> None:
    answer = resolve_host(resolver, "no-such-bucket.example.test")

    assert answer.addresses == ()
    assert answer.failure is not None
    assert answer.failure.kind == "nxdomain"
    assert "no-such-bucket.example.test" in answer.failure.message
    assert dns_server.endpoint in answer.failure.message
    assert answer.nameserver == dns_server.endpoint


def test_nxdomain_at_end_of_cname_chain_keeps_the_chain(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, "dangling.example.test")

    assert answer.failure is not None
    assert answer.failure.kind == "nxdomain"
    assert answer.cname_chain == ("missing-target.example.test",)


def test_no_data_when_name_exists_without_a_or_aaaa(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, "eu-west-1.amazonaws.com")

    assert answer.addresses == ()
    assert answer.failure is not None
    assert answer.failure.kind == "no_data"
    assert "has no A or AAAA records" in answer.failure.message


def test_timeout_when_server_never_answers(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer
) -> None:
    started = time.monotonic()
    answer = resolve_host(resolver, "silent.example.test")
    elapsed = time.monotonic() - started

    assert answer.failure is not None
    assert answer.failure.kind == "timeout"
    assert answer.failure.message == (
        f"DNS timeout after 0.3 s asking {dns_server.endpoint} for silent.example.test A"
    )
    assert answer.nameserver is None
    assert elapsed < 2.0
    assert ReceivedQuery("silent.example.test", "AAAA") not in dns_server.queries


def test_servfail_is_reported_with_the_server_that_said_it(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer
) -> None:
    answer = resolve_host(resolver, "broken.example.test")

    assert answer.failure is not None
    assert answer.failure.kind == "servfail"
    assert answer.failure.message == (
        f"DNS SERVFAIL from {dns_server.endpoint} for broken.example.test A"
    )
    assert answer.nameserver == dns_server.endpoint


def test_servfail_on_cname_target_fails_the_alias(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, "to-broken.example.test")

    assert answer.failure is not None
    assert answer.failure.kind == "servfail"


def test_refused_is_distinct_from_servfail(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer
) -> None:
    answer = resolve_host(resolver, "forbidden.example.test")

    assert answer.failure is not None
    assert answer.failure.kind == "refused"
    assert answer.failure.message == (
        f"DNS REFUSED by {dns_server.endpoint} for forbidden.example.test A"
    )


def test_no_nameservers_when_resolver_has_none(resolver: dns.resolver.Resolver) -> None:
    resolver.nameservers = []

    answer = resolve_host(resolver, REGIONAL)

    assert answer.failure is not None
    assert answer.failure.kind == "no_nameservers"
    assert answer.nameserver is None


def test_error_when_servers_disagree_servfail_and_refused() -> None:
    servfail_zone = DnsZone()
    servfail_zone.set_behaviour(REGIONAL, "servfail")
    refused_zone = DnsZone()
    refused_zone.set_behaviour(REGIONAL, "refused")
    with LocalDnsServer(servfail_zone) as first, LocalDnsServer(refused_zone) as second:
        resolver = make_resolver(DnsSettings(nameservers=("127.0.0.1",), timeout_seconds=1.0))
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver("127.0.0.1", first.port),
            dns.nameserver.Do53Nameserver("127.0.0.1", second.port),
        ]

        answer = resolve_host(resolver, REGIONAL)
        servfail_endpoint, refused_endpoint = first.endpoint, second.endpoint

    assert answer.failure is not None
    assert answer.failure.kind == "error"
    assert f"{servfail_endpoint} answered SERVFAIL" in answer.failure.message
    assert f"{refused_endpoint} answered REFUSED" in answer.failure.message


@pytest.mark.parametrize("host", ["bad..name.example.test", "", " ", ".", "a" * 64 + ".test"])
def test_error_for_an_invalid_host_name_without_any_query(
    resolver: dns.resolver.Resolver, dns_server: LocalDnsServer, host: str
) -> None:
    dns_server.clear_queries()

    answer = resolve_host(resolver, host)

    assert answer.failure is not None
    assert answer.failure.kind == "error"
    assert answer.failure.message.startswith(f"invalid host name {host!r}")
    assert dns_server.queries == []


def test_every_failure_kind_is_distinct_and_messages_are_one_line(
    resolver: dns.resolver.Resolver,
) -> None:
    hosts = {
        "nxdomain": "no-such-bucket.example.test",
        "no_data": "eu-west-1.amazonaws.com",
        "timeout": "silent.example.test",
        "servfail": "broken.example.test",
        "refused": "forbidden.example.test",
        "error": "bad..name.example.test",
    }
    failures = {expected: resolve_host(resolver, host).failure for expected, host in hosts.items()}
    resolver.nameservers = []
    failures["no_nameservers"] = resolve_host(resolver, REGIONAL).failure

    observed_kinds = {
        expected: failure.kind if failure else None for expected, failure in failures.items()
    }
    assert observed_kinds == {expected: expected for expected in failures}
    assert all(failure and "\n" not in failure.message for failure in failures.values())


# --- reporting -----------------------------------------------------------------------------


def test_latency_comes_from_the_given_clock(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, REGIONAL, clock=stepping_clock(100.0, 100.01234))

    assert answer.latency_ms == pytest.approx(12.34)


def test_to_dict_is_json_ready_and_rounds_latency(resolver: dns.resolver.Resolver) -> None:
    answer = resolve_host(resolver, "hop1.example.test", clock=stepping_clock(5.0, 5.01234))

    as_dict = answer.to_dict()

    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict == {
        "host": "hop1.example.test",
        "addresses": [{"ip": "192.0.2.7", "family": "ipv4", "ttl": 30}],
        "cname_chain": ["hop2.example.test", "final.example.test"],
        "nameserver": answer.nameserver,
        "latency_ms": 12.3,
        "failure": None,
    }


def test_to_dict_of_a_failure_carries_kind_and_message(resolver: dns.resolver.Resolver) -> None:
    as_dict = resolve_host(resolver, "broken.example.test").to_dict()

    assert as_dict["addresses"] == []
    assert as_dict["failure"]["kind"] == "servfail"
    assert as_dict["failure"]["message"].startswith("DNS SERVFAIL from 127.0.0.1:")


# --- resolver construction -----------------------------------------------------------------


def test_make_resolver_uses_explicit_nameservers_port_and_limits() -> None:
    resolver = make_resolver(
        DnsSettings(nameservers=("127.0.0.1",), port=5353, timeout_seconds=0.7)
    )

    assert list(resolver.nameservers) == ["127.0.0.1"]
    assert resolver.port == 5353
    assert resolver.timeout == 0.7
    assert resolver.lifetime == 0.7


def test_make_resolver_without_nameservers_reads_system_configuration() -> None:
    try:
        system_nameservers = list(dns.resolver.Resolver(configure=True).nameservers)
    except dns.resolver.NoResolverConfiguration:
        system_nameservers = []

    resolver = make_resolver(DnsSettings(timeout_seconds=1.5))

    assert list(resolver.nameservers) == system_nameservers
    assert resolver.lifetime == 1.5


def test_make_resolver_rejects_a_nameserver_that_is_not_an_address() -> None:
    with pytest.raises(ValueError):
        make_resolver(DnsSettings(nameservers=("not-an-ip",)))


# --- the server itself ---------------------------------------------------------------------


def test_server_answers_over_tcp_with_aa_and_ra(dns_server: LocalDnsServer) -> None:
    reply = dns.query.tcp(
        dns.message.make_query(REGIONAL, "A"), dns_server.address, port=dns_server.port, timeout=2
    )

    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert reply.flags & dns.flags.RA
    assert {rdata.address for rdata in reply.answer[0]} == set(REGIONAL_IPS)


def test_server_rcodes_for_nxdomain_no_data_and_refused(dns_server: LocalDnsServer) -> None:
    def ask(name: str) -> dns.message.Message:
        return dns.query.udp(
            dns.message.make_query(name, "A"), dns_server.address, port=dns_server.port, timeout=2
        )

    nxdomain = ask("no-such-bucket.example.test")
    no_data = ask("eu-west-1.amazonaws.com")
    refused = ask("forbidden.example.test")

    assert (nxdomain.rcode(), nxdomain.answer) == (dns.rcode.NXDOMAIN, [])
    assert (no_data.rcode(), no_data.answer) == (dns.rcode.NOERROR, [])
    assert refused.rcode() == dns.rcode.REFUSED
    assert not refused.flags & dns.flags.AA


def test_server_records_received_queries(dns_server: LocalDnsServer) -> None:
    dns_server.clear_queries()
    dns.query.udp(
        dns.message.make_query("Final.Example.Test", "AAAA"),
        dns_server.address,
        port=dns_server.port,
        timeout=2,
    )

    assert dns_server.queries == [ReceivedQuery("final.example.test", "AAAA")]
    assert dns_server.query_count == 1


def test_server_stop_is_quick_and_releases_the_port() -> None:
    server = LocalDnsServer(build_zone()).start()
    port = server.port

    started = time.monotonic()
    server.stop()
    stopped_after = time.monotonic() - started

    assert stopped_after < 2.0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", port))


def test_server_refuses_to_bind_outside_loopback() -> None:
    with pytest.raises(ValueError):
        LocalDnsServer(DnsZone(), host="0.0.0.0")


def test_zone_rejects_unknown_behaviour_and_cname_next_to_data() -> None:
    zone = DnsZone()
    zone.add_a("taken.example.test", "192.0.2.1")

    with pytest.raises(ValueError):
        zone.set_behaviour("x.example.test", "explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        zone.add_cname("taken.example.test", "elsewhere.example.test")


@pytest.mark.parametrize("host,ip,family", [
    ("10.0.2.50", "10.0.2.50", "ipv4"),
    ("2001:db8::1", "2001:db8::1", "ipv6"),
    ("[2001:DB8::1]", "2001:db8::1", "ipv6"),
])
def test_an_ip_address_is_answered_without_a_query(dns_server: LocalDnsServer,
                                                    resolver: dns.resolver.Resolver,
                                                    host: str, ip: str, family: str) -> None:
    """Issue 12: an address is judged as that address; DNS is never asked about it."""
    before = dns_server.query_count
    answer = resolve_host(resolver, host)
    assert dns_server.query_count == before
    assert answer.ok and [(a.ip, a.family) for a in answer.addresses] == [(ip, family)]
    assert answer.nameserver is None and answer.failure is None
