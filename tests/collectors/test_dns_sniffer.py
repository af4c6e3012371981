"""The DNS-response sniffer: a real response parsed into a sighting, and (with CAP_NET_RAW) the
names another process resolves from the local DNS server on 127.0.0.1, seen on the wire."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from s3_route_agent.collectors.dns_sniffer import DnsSniffer, sighting_from_dns
from s3_route_agent.devenv.localenv.dns_server import DnsZone, LocalDnsServer
from s3_route_agent.live.probe import raw_capability

HAVE_RAW, WHY_NOT = raw_capability()


def test_a_response_becomes_a_sighting_with_its_cname_chain() -> None:
    pytest.importorskip("scapy", reason="the sniffer needs scapy (extra probe)")
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    answer = DNS(bytes(DNS(id=7, qr=1, qd=DNSQR(qname="files.example.com"), an=[
        DNSRR(rrname="files.example.com", type="CNAME", rdata="mybucket.s3.amazonaws.com"),
        DNSRR(rrname="mybucket.s3.amazonaws.com", type="A", rdata="52.216.8.10"),
        DNSRR(rrname="mybucket.s3.amazonaws.com", type="AAAA", rdata="2600:1fa0::1")])))
    sighting = sighting_from_dns(answer, 12.5)
    assert sighting.name == "files.example.com" and sighting.time == 12.5
    assert sighting.addresses == ("52.216.8.10", "2600:1fa0::1")
    assert sighting.cnames == ("mybucket.s3.amazonaws.com",)
    empty = DNS(bytes(DNS(id=8, qr=1, rcode=3, qd=DNSQR(qname="nope.example.com"))))
    assert sighting_from_dns(empty, 1.0) is None      # NXDOMAIN: no address, nothing seen


@pytest.mark.skipif(not HAVE_RAW, reason=f"the DNS sniffer needs packet probes: {WHY_NOT}")
def test_the_sniffer_sees_what_another_process_resolves() -> None:
    zone = DnsZone()
    zone.add_cname("data.example.com", "analytics.s3.eu-west-1.amazonaws.com")
    zone.add_a("analytics.s3.eu-west-1.amazonaws.com", "198.51.100.11")
    server = LocalDnsServer(zone).start()
    sniffer = DnsSniffer(ports=(server.port,)).start()
    try:
        assert sniffer.running and sniffer.skipped is None
        lookup = ("import dns.resolver; r = dns.resolver.Resolver(configure=False); "
                  f"r.nameservers = ['127.0.0.1']; r.port = {server.port}; "
                  "print(r.resolve('data.example.com', 'A').rrset)")
        subprocess.run([sys.executable, "-c", lookup], check=True, capture_output=True,
                       timeout=30)
        deadline = time.monotonic() + 5
        seen = ()
        while not seen and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = tuple(s for s in sniffer.drain() if s.name == "data.example.com")
    finally:
        sniffer.stop()
        server.stop()
    assert seen and seen[0].addresses == ("198.51.100.11",)
    assert seen[0].cnames == ("analytics.s3.eu-west-1.amazonaws.com",)
    assert not sniffer.running


def test_without_cap_net_raw_the_sniffer_is_skipped_with_the_reason(monkeypatch) -> None:
    from s3_route_agent.collectors import dns_sniffer
    monkeypatch.setattr(dns_sniffer, "raw_capability",
                        lambda: (False, "no CAP_NET_RAW: packet probes need root or the capability"))
    sniffer = DnsSniffer().start()
    assert not sniffer.running and "CAP_NET_RAW" in sniffer.skipped
    assert sniffer.drain() == ()
    sniffer.stop()
