"""DNS responses seen on the host: which names its software resolves (scapy, probes enabled).

When packet probes are enabled (``probe.enabled``, CAP_NET_RAW, extra ``probe``), an
AsyncSniffer on every interface that is up records each DNS response (UDP from port 53, or the
configured resolver port): the name asked, the CNAMEs and the A/AAAA addresses. The report's
``observed.names`` lists the S3 names among them (the engine decides which are S3), and flows are
named after them. There is no libpcap here, so no BPF string: each listening
socket gets a small classic BPF program built by hand (:func:`dns_response_filter`: UDP from the
resolver ports only, dropped in the kernel otherwise, so a busy loopback does not overflow the
queue), and every packet kept is checked again in Python (``lfilter``). scapy is imported only
here, only when the sniffer starts.

The daemon sniffs between cycles; a one-shot ``check`` sniffs only while it runs. The buffer is
bounded (``max_sightings``, the oldest dropped first).
"""

from __future__ import annotations

import collections
import logging
import socket
import struct
import threading
import time
from typing import Any, Callable, Iterable

from s3_route_agent.engine.observed import DnsSighting, normal_name
from s3_route_agent.live.probe import raw_capability, up_interfaces

logger = logging.getLogger(__name__)

DNS_TYPE_A = 1          # RFC 1035 section 3.2.2
DNS_TYPE_CNAME = 5
DNS_TYPE_AAAA = 28      # RFC 3596

# Classic BPF (linux/filter.h, Documentation/networking/filter.rst): the opcodes the socket
# filter below uses, and SO_ATTACH_FILTER (asm-generic/socket.h).
BPF_LDH_ABS = 0x28      # A = u16 at [k]
BPF_LDB_ABS = 0x30      # A = u8 at [k]
BPF_LDH_IND = 0x48      # A = u16 at [X + k]
BPF_LDX_MSH = 0xB1      # X = 4 * ([k] & 0xf): the IPv4 header length
BPF_JEQ = 0x15          # jump if A == k
BPF_JSET = 0x45         # jump if A & k
BPF_RET = 0x06          # return k (bytes to keep; 0 drops)
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
RECEIVE_BUFFER = 4 << 20  # the kernel queues DNS responses here while Python catches up


def dns_response_filter(ports: Iterable[int]) -> list[tuple[int, int, int, int]]:
    """A socket filter (classic BPF over Ethernet frames) keeping only UDP packets from one of
    ``ports``, IPv4 (not a fragment) or IPv6 (UDP right after the fixed header): the kernel drops
    the rest before it is copied to the sniffer. There is no libpcap here to compile a filter
    string, so the program is built by hand; lfilter still checks every packet it keeps."""
    ports = sorted(set(int(p) for p in ports))
    n = len(ports)
    v6 = 8 + n                  # where the IPv6 part starts
    drop = v6 + 4 + n
    accept = drop + 1

    def to(target: int, here: int) -> int:      # jumps count from the next instruction
        return target - here - 1

    def port_checks(at: int) -> list[tuple[int, int, int, int]]:
        return [(BPF_JEQ, to(accept, at + i), to(drop, at + i) if i == n - 1 else 0, port)
                for i, port in enumerate(ports)]
    program = [
        (BPF_LDH_ABS, 0, 0, 12),                # 0: EtherType
        (BPF_JEQ, 0, to(v6, 1), 0x0800),        # 1: IPv4, else the IPv6 part
        (BPF_LDB_ABS, 0, 0, 23),                # 2: IPv4 protocol
        (BPF_JEQ, 0, to(drop, 3), 17),          # 3: UDP
        (BPF_LDH_ABS, 0, 0, 20),                # 4: flags and fragment offset
        (BPF_JSET, to(drop, 5), 0, 0x1FFF),     # 5: a fragment after the first: drop
        (BPF_LDX_MSH, 0, 0, 14),                # 6: X = the IPv4 header length
        (BPF_LDH_IND, 0, 0, 14),                # 7: the UDP source port
    ]
    program += port_checks(8)
    program += [
        (BPF_JEQ, 0, to(drop, v6), 0x86DD),     # IPv6 (A still holds the EtherType)
        (BPF_LDB_ABS, 0, 0, 20),                # next header
        (BPF_JEQ, 0, to(drop, v6 + 2), 17),     # UDP right after the fixed header
        (BPF_LDH_ABS, 0, 0, 54),                # the UDP source port
    ]
    program += port_checks(v6 + 4)
    program += [(BPF_RET, 0, 0, 0), (BPF_RET, 0, 0, 0x40000)]
    return program


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """Attach a classic BPF ``program`` to ``sock`` (SO_ATTACH_FILTER)."""
    import ctypes  # only when sniffing

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint32)]
    array = (SockFilter * len(program))(*[SockFilter(*op) for op in program])
    fprog = struct.pack("HL", len(program), ctypes.addressof(array))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


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
            sockets = [self._open(name, ports) for name in up_interfaces()]
            sniffer = AsyncSniffer(opened_socket=sockets, lfilter=is_response, prn=record,
                                   store=False, started_callback=ready.set)
            sniffer.start()
        except Exception as exc:  # noqa: BLE001 - a sniffer that cannot start is skipped
            self.skipped = f"DNS sniffer could not start: {type(exc).__name__}: {exc}"
            return self
        ready.wait(3.0)
        self._sniffer = sniffer
        self.skipped = None
        return self

    @staticmethod
    def _open(iface: str, ports: Iterable[int]) -> Any:
        """A scapy listening socket on ``iface`` whose kernel filter keeps only UDP from
        ``ports``, with a large receive buffer: a busy host (loopback included) must not fill
        the queue with packets Python would dissect only to drop."""
        from scapy.arch.linux import L2ListenSocket  # noqa: PLC0415 - optional
        sock = L2ListenSocket(iface=iface, nofilter=1)
        attach_filter(sock.ins, dns_response_filter(ports))
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):   # FORCE: root may pass rmem_max
            try:
                sock.ins.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
                break
            except OSError:
                continue
        sock.ins.setblocking(False)      # what arrived before the filter: dropped
        try:
            while True:
                sock.ins.recv(65536)
        except OSError:
            pass
        sock.ins.setblocking(True)
        return sock

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
