"""Packet probes: a TCP SYN traceroute and a sniffer during the transfer (scapy, extra ``probe``).

scapy is imported only when probes are enabled, inside these functions. Without CAP_NET_RAW the
probes are skipped with the reason in the report; that is not a failure. There is no libpcap on
these machines, so packets are filtered in Python with ``lfilter``, never with a BPF string.

What the hops mean (VPC user guide, "NAT gateways"; the VPC router itself never decrements TTL,
so it is not a hop): a first hop that is a NAT gateway's private address (DescribeNatGateways)
confirms ``public`` via NAT; an endpoint ENI or S3 address reached with no intermediate hop
inside the VPC is consistent with ``gateway`` or ``interface``.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from typing import Any, Iterable

from s3_route_agent.engine.evidence import Hop, SnifferResult, SynSeen, Traceroute

logger = logging.getLogger(__name__)


def raw_capability() -> tuple[bool, str]:
    """Whether this process may send and sniff raw packets (CAP_NET_RAW), with the reason."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    except PermissionError:
        return False, "no CAP_NET_RAW: packet probes need root or the capability"
    except (OSError, AttributeError) as exc:
        return False, f"raw sockets unavailable: {exc}"
    sock.close()
    try:
        import scapy  # noqa: F401  (extra "probe")
    except ImportError:
        return False, "scapy is not installed (pip install 's3-route-agent[probe]')"
    return True, "CAP_NET_RAW and scapy available"


def classify_hop(address: str | None, destination: str, nat_addresses: Iterable[str]) -> str:
    """``destination``, ``nat`` (a NAT gateway's private address), ``other`` or ``silent``."""
    if address is None:
        return "silent"
    if address == destination:
        return "destination"
    if address in set(nat_addresses):
        return "nat"
    return "other"


def syn_traceroute(destination: str, port: int, max_hops: int, timeout: float,
                   nat_addresses: Iterable[str] = ()) -> Traceroute:
    """TCP SYN traceroute to destination:port, at most ``max_hops`` hops and ``timeout`` s each.

    A hop answers with ICMP time exceeded; the destination with SYN-ACK (open) or RST (closed);
    ICMP unreachable ends the trace.
    """
    ok, why = raw_capability()
    if not ok:
        return Traceroute.skip(why, destination, port)
    from scapy.layers.inet import ICMP, IP, TCP  # noqa: PLC0415 - optional, only when enabled
    from scapy.sendrecv import sr1

    nats = tuple(nat_addresses)
    hops: list[Hop] = []
    deadline = time.monotonic() + max_hops * timeout + 1.0
    reached = False
    for ttl in range(1, max_hops + 1):
        if time.monotonic() > deadline:
            break
        sport = random.randint(33000, 60000)
        started = time.perf_counter()
        answer = sr1(IP(dst=destination, ttl=ttl) / TCP(sport=sport, dport=port, flags="S"),
                     timeout=timeout, verbose=0)
        rtt = round((time.perf_counter() - started) * 1000, 1)
        address = answer.src if answer is not None else None
        hop_reached = bool(answer is not None and answer.haslayer(TCP)
                           and answer.src == destination)
        unreachable = bool(answer is not None and not hop_reached and answer.haslayer(ICMP)
                           and int(answer[ICMP].type) == 3)
        hops.append(Hop(ttl=ttl, address=address, reached=hop_reached,
                        rtt_ms=rtt if answer is not None else None,
                        kind=classify_hop(address, destination, nats),
                        tcp_flags=str(answer[TCP].flags) if hop_reached else None,
                        unreachable=unreachable))
        if hop_reached or unreachable:
            reached = hop_reached
            break
    first = next((h.address for h in hops if h.address), None)
    return Traceroute(destination=destination, port=port, max_hops=max_hops, hops=tuple(hops),
                      reached=reached, first_hop_is_nat=first in nats if first else False)


def up_interfaces() -> list[str]:
    """Names of this namespace's interfaces that are up (a socket on a down one fails)."""
    names = []
    for _, name in socket.if_nameindex():
        try:
            with open(f"/sys/class/net/{name}/flags", encoding="ascii") as handle:
                if int(handle.read().strip(), 16) & 0x1:   # IFF_UP
                    names.append(name)
        except OSError:
            continue
    return names


def _iface_name(iface: Any) -> str | None:
    """scapy gives ``sniffed_on`` as a name or a NetworkInterface object; the report wants a name."""
    if iface is None:
        return None
    return str(getattr(iface, "name", None) or iface)


class SynSniffer:
    """AsyncSniffer recording outgoing TCP SYNs (destination, port, interface) while running."""

    def __init__(self) -> None:
        """Prepare; :meth:`start` checks the capability and starts sniffing."""
        self.skipped: str | None = None
        self._sniffer: Any = None

    def start(self) -> "SynSniffer":
        """Start sniffing on every interface (skipped with a reason without CAP_NET_RAW)."""
        ok, why = raw_capability()
        if not ok:
            self.skipped = why
            return self
        from scapy.layers.inet import TCP  # noqa: PLC0415 - optional, only when enabled
        from scapy.sendrecv import AsyncSniffer

        def is_syn(packet: Any) -> bool:
            # SYN without ACK: a connection being opened. lfilter, not BPF: no libpcap here.
            return packet.haslayer(TCP) and (int(packet[TCP].flags) & 0x12) == 0x02

        ready = threading.Event()
        # Every interface (scapy's default is only conf.iface): a SYN may leave by any of them.
        self._sniffer = AsyncSniffer(iface=up_interfaces(), lfilter=is_syn, store=True,
                                     started_callback=ready.set)
        self._sniffer.start()
        ready.wait(3.0)
        return self

    def stop(self) -> SnifferResult:
        """Stop and summarise what was seen."""
        if self.skipped or self._sniffer is None:
            return SnifferResult.skip(self.skipped or "not started")
        time.sleep(0.1)   # let the last packets reach the socket
        packets = self._sniffer.stop() or []
        from scapy.layers.inet import IP, TCP  # noqa: PLC0415

        seen = {SynSeen(packet[IP].dst, int(packet[TCP].dport),
                        _iface_name(getattr(packet, "sniffed_on", None)))
                for packet in packets if packet.haslayer(IP)}
        return SnifferResult(syns=tuple(sorted(seen, key=lambda s: (s.dst, s.dport,
                                                                     str(s.iface)))))
