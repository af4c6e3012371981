"""DNS responses seen on the host: which names its software resolves (scapy, probes enabled).

When packet probes are enabled (``probe.enabled``, CAP_NET_RAW, extra ``probe``), an
AsyncSniffer on every interface that is up records each DNS response (UDP from port 53, or the
configured resolver port): the name asked, the CNAMEs and the A/AAAA addresses. The report's
``observed.names`` lists the S3 names among them (the engine decides which are S3), and flows are
named after them. Packets are filtered in Python (``lfilter``): there is no libpcap here, so no
BPF string. scapy is imported only here, only when the sniffer starts.

The daemon sniffs between cycles; a one-shot ``check`` sniffs only while it runs. The buffer is
bounded (``max_sightings``, the oldest dropped first).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Iterable

from s3_route_agent.engine.observed import DnsSighting, normal_name
from s3_route_agent.live.probe import raw_capability, up_interfaces

logger = logging.getLogger(__name__)

DNS_TYPE_A = 1          # RFC 1035 section 3.2.2
DNS_TYPE_CNAME = 5
DNS_TYPE_AAAA = 28      # RFC 3596


def _text(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def sighting_from_dns(dns: Any, when: float) -> DnsSighting | None:
    """The sighting in one scapy ``DNS`` response layer, or None (no question, no address)."""
    questions = dns.qd if isinstance(dns.qd, list) else ([dns.qd] if dns.qd else [])
    if not questions:
        return None
    name = normal_name(_text(questions[0].qname))
    answers = dns.an if isinstance(dns.an, list) else []
    addresses: list[str] = []
    cnames: list[str] = []
    for record in answers:
        kind = int(getattr(record, "type", 0))
        if kind in (DNS_TYPE_A, DNS_TYPE_AAAA):
            addresses.append(_text(record.rdata))
        elif kind == DNS_TYPE_CNAME:
            cnames.append(normal_name(_text(record.rdata)))
    if not addresses:
        return None
    return DnsSighting(time=when, name=name, addresses=tuple(dict.fromkeys(addresses)),
                       cnames=tuple(dict.fromkeys(cnames)))


class DnsSniffer:
    """Records DNS responses while running (see the module docstring)."""

    def __init__(self, ports: Iterable[int] = (53,), max_sightings: int = 2000,
                 clock: Callable[[], float] = time.time) -> None:
        """Sniff responses from ``ports``; keep at most ``max_sightings`` until drained."""
        self.ports = frozenset(int(p) for p in ports)
        self.clock = clock
        self.skipped: str | None = None
        self._sightings: collections.deque[DnsSighting] = collections.deque(maxlen=max_sightings)
        self._lock = threading.Lock()
        self._sniffer: Any = None

    @property
    def running(self) -> bool:
        """True while sniffing."""
        return self._sniffer is not None

    def start(self) -> "DnsSniffer":
        """Start sniffing on every interface that is up (skipped, with the reason, without
        CAP_NET_RAW or scapy)."""
        if self._sniffer is not None:
            return self
        ok, why = raw_capability()
        if not ok:
            self.skipped = why
            return self
        try:
            from scapy.layers.dns import DNS  # noqa: PLC0415 - optional, only when enabled
            from scapy.layers.inet import UDP
            from scapy.sendrecv import AsyncSniffer
        except ImportError as exc:  # pragma: no cover - raw_capability checked the import
            self.skipped = f"scapy unusable: {exc}"
            return self
        ports = self.ports

        def dns_of(packet: Any) -> Any:
            # scapy dissects DNS on port 53 only; another resolver port is decoded here.
            if packet.haslayer(DNS):
                return packet[DNS]
            return DNS(bytes(packet[UDP].payload))

        def is_response(packet: Any) -> bool:
            # lfilter, not BPF: there is no libpcap on these machines.
            if not packet.haslayer(UDP) or int(packet[UDP].sport) not in ports:
                return False
            try:
                return int(dns_of(packet).qr) == 1
            except Exception:  # noqa: BLE001 - not DNS after all
                return False

        def record(packet: Any) -> None:
            try:
                sighting = sighting_from_dns(dns_of(packet), float(getattr(packet, "time", 0))
                                             or self.clock())
            except Exception as exc:  # noqa: BLE001 - a malformed packet never stops the sniffer
                logger.debug("unreadable DNS response: %s", exc)
                return
            if sighting is not None:
                with self._lock:
                    self._sightings.append(sighting)

        ready = threading.Event()
        try:
            sniffer = AsyncSniffer(iface=up_interfaces(), lfilter=is_response, prn=record,
                                   store=False, started_callback=ready.set)
            sniffer.start()
        except Exception as exc:  # noqa: BLE001 - a sniffer that cannot start is skipped
            self.skipped = f"DNS sniffer could not start: {type(exc).__name__}: {exc}"
            return self
        ready.wait(3.0)
        self._sniffer = sniffer
        self.skipped = None
        return self

    def drain(self) -> tuple[DnsSighting, ...]:
        """The responses seen since the last drain (oldest first)."""
        with self._lock:
            out = tuple(self._sightings)
            self._sightings.clear()
        return out

    def stop(self) -> None:
        """Stop sniffing (what was seen stays until drained)."""
        sniffer, self._sniffer = self._sniffer, None
        if sniffer is None:
            return
        try:
            time.sleep(0.05)   # let the last packets reach the socket
            sniffer.stop()
        except Exception as exc:  # noqa: BLE001 - scapy raises when it already stopped
            logger.debug("stopping the DNS sniffer: %s", exc)
