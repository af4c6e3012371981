"""Packet probes: hop classification, capability skip, and real probes on 127.0.0.1 only."""

from __future__ import annotations

import socket
import sys

import pytest

from s3_route_agent.live import probe
from s3_route_agent.engine.evidence import SynSeen
from s3_route_agent.live.probe import SynSniffer, classify_hop, raw_capability, syn_traceroute

HAVE_RAW, WHY_NOT = raw_capability()


@pytest.mark.parametrize("address,kind", [
    (None, "silent"), ("198.51.100.11", "destination"), ("10.0.0.5", "nat"), ("10.0.1.1", "other")])
def test_classify_hop(address, kind) -> None:
    """A hop is the destination, a NAT gateway's private address, something else, or silent."""
    assert classify_hop(address, "198.51.100.11", ["10.0.0.5", "10.0.0.6"]) == kind


def test_without_cap_net_raw_probes_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CAP_NET_RAW: skipped with the reason, no exception, scapy never needed."""
    real = socket.socket

    def no_raw(family=socket.AF_INET, *args, **kwargs):
        if family == socket.AF_PACKET:
            raise PermissionError(1, "Operation not permitted")
        return real(family, *args, **kwargs)
    monkeypatch.setattr(probe.socket, "socket", no_raw)
    ok, why = raw_capability()
    assert not ok and "CAP_NET_RAW" in why
    trace = syn_traceroute("127.0.0.1", 443, 3, 0.5)
    assert trace.skipped and "CAP_NET_RAW" in trace.reason
    sniffed = SynSniffer().start().stop()
    assert sniffed.skipped and "CAP_NET_RAW" in sniffed.reason


def test_scapy_not_imported_by_the_agent() -> None:
    """Importing the check path does not import scapy (only enabled probes do)."""
    import subprocess
    code = ("import sys, s3_route_agent.runs.check, s3_route_agent.live.apply, s3_route_agent.live.probe, s3_route_agent.cli; "
            "print('scapy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 (loopback only)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.skipif(not HAVE_RAW, reason=f"packet probes unavailable: {WHY_NOT}")
def test_traceroute_to_loopback_reaches_at_hop_one(listener: int) -> None:
    """A SYN traceroute to 127.0.0.1 gets the SYN-ACK from the destination at TTL 1."""
    trace = syn_traceroute("127.0.0.1", listener, 3, 1.0, nat_addresses=["10.0.0.5"])
    assert not trace.skipped
    assert trace.reached and trace.hops[0].reached
    assert trace.hops[0].kind == "destination"
    assert trace.intermediate_hops == () and trace.first_hop_is_nat is False


@pytest.mark.skipif(not HAVE_RAW, reason=f"packet probes unavailable: {WHY_NOT}")
def test_sniffer_sees_the_syn(listener: int) -> None:
    """The sniffer records the destination, port and interface of a connection's SYN."""
    sniffer = SynSniffer().start()
    with socket.create_connection(("127.0.0.1", listener), timeout=2):
        pass
    seen = sniffer.stop()
    assert not seen.skipped
    assert "127.0.0.1" in seen.syn_destinations
    assert SynSeen("127.0.0.1", listener, "lo") in seen.syns
