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


def _run_cbpf(program, frame: bytes) -> int:
    """A Python model of the classic BPF opcodes the filter uses (linux/filter.h)."""
    from s3_route_agent.collectors import dns_sniffer as ds
    a = x = pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == ds.BPF_LDH_ABS:
            a = int.from_bytes(frame[k:k + 2], "big")
        elif code == ds.BPF_LDB_ABS:
            a = frame[k]
        elif code == ds.BPF_LDH_IND:
            a = int.from_bytes(frame[x + k:x + k + 2], "big")
        elif code == ds.BPF_LDX_MSH:
            x = 4 * (frame[k] & 0xF)
        elif code == ds.BPF_JEQ:
            pc += jt if a == k else jf
        elif code == ds.BPF_JSET:
            pc += jt if a & k else jf
        elif code == ds.BPF_RET:
            return k


def _frame(v6: bool, proto: int, sport: int, fragment: int = 0) -> bytes:
    import struct
    ether = b"\0" * 12 + (b"\x86\xdd" if v6 else b"\x08\x00")
    ports = struct.pack("!HH", sport, 40000) + b"\0" * 16
    if v6:
        return ether + struct.pack("!IHBB", 6 << 28, len(ports), proto, 64) + b"\0" * 32 + ports
    return ether + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(ports), 1, fragment, 64,
                               proto, 0, b"\x7f\0\0\x01", b"\x7f\0\0\x01") + ports


@pytest.mark.parametrize("v6,proto,sport,fragment,kept", [
    (False, 17, 53, 0, True), (False, 17, 5353, 0, True), (False, 17, 1234, 0, False),
    (False, 6, 53, 0, False), (False, 17, 53, 0x2000, True),     # first fragment (MF set)
    (False, 17, 53, 0x0010, False),                               # a later fragment
    (True, 17, 53, 0, True), (True, 17, 5353, 0, True), (True, 17, 80, 0, False),
    (True, 6, 53, 0, False)])
def test_the_kernel_filter_keeps_only_udp_from_the_resolver_ports(v6, proto, sport, fragment,
                                                                  kept) -> None:
    from s3_route_agent.collectors.dns_sniffer import dns_response_filter
    program = dns_response_filter([53, 5353])
    assert (_run_cbpf(program, _frame(v6, proto, sport, fragment)) > 0) is kept
