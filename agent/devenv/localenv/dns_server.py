"""A real DNS server (UDP and TCP) on 127.0.0.1 that answers from an in-memory record store.

It behaves like the recursive resolver an EC2 host talks to: it follows CNAME chains inside
its store and returns the whole chain plus the final RRset, answers NXDOMAIN for names that do
not exist, NOERROR with an empty answer ("no data") for names that exist without the asked
type, and can be told to fail for chosen names (SERVFAIL, REFUSED, or never answering).
Wire format is handled entirely by dnspython.
"""

from __future__ import annotations

import ipaddress
import logging
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, NamedTuple, get_args

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset

logger = logging.getLogger(__name__)

FailureBehaviour = Literal["servfail", "timeout", "refused"]
"""How the server misbehaves for a name: answer SERVFAIL, answer REFUSED, or drop the query."""

MAX_CNAME_HOPS = 10
"""CNAME hops the server follows before it gives up with SERVFAIL (dnspython allows 16)."""

_UDP_PAYLOAD_WITHOUT_EDNS = 512
_TCP_MESSAGE_LIMIT = 65535
_POLL_INTERVAL_SECONDS = 0.1
_TCP_IDLE_LIMIT_SECONDS = 10.0
_STOP_BUDGET_SECONDS = 2.0
_PORT_PAIR_ATTEMPTS = 20


def _normalize_name(name: str | dns.name.Name) -> dns.name.Name:
    """Return *name* as an absolute, lower-cased dnspython name."""
    parsed = name if isinstance(name, dns.name.Name) else dns.name.from_text(name)
    if not parsed.is_absolute():
        parsed = parsed.concatenate(dns.name.root)
    return parsed.canonicalize()


@dataclass
class _ZoneNode:
    """Everything stored under one owner name."""

    rrsets: dict[dns.rdatatype.RdataType, dns.rrset.RRset] = field(default_factory=dict)
    behaviour: FailureBehaviour | None = None


@dataclass(frozen=True)
class ZoneResolution:
    """What the store says about one question.

    ``drop`` means the server must not answer at all (the "timeout" behaviour).
    """

    rcode: dns.rcode.Rcode
    answer: tuple[dns.rrset.RRset, ...] = ()
    drop: bool = False


@dataclass(eq=False)
class DnsZone:
    """Thread-safe in-memory record store with wildcards and per-name failure behaviours.

    Names are case-insensitive and may be given with or without the final dot. An owner name
    whose first label is ``*`` matches any name with one or more labels in that position
    (``*.example`` matches ``a.example`` and ``a.b.example``); an exact name always wins over a
    wildcard, and the closest wildcard wins over one further up. A name with no records of its
    own but with stored names below it exists (an empty non-terminal) and answers "no data".
    """

    _nodes: dict[dns.name.Name, _ZoneNode] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def add_a(self, name: str, *ips: str, ttl: int = 60) -> None:
        """Add IPv4 addresses to the A RRset of *name* (the RRset keeps the lowest TTL)."""
        rdatas = [
            dns.rdtypes.IN.A.A(
                dns.rdataclass.IN, dns.rdatatype.A, str(ipaddress.IPv4Address(ip))
            )
            for ip in ips
        ]
        self._add_rdatas(name, dns.rdatatype.A, rdatas, ttl)

    def add_aaaa(self, name: str, *ips: str, ttl: int = 60) -> None:
        """Add IPv6 addresses to the AAAA RRset of *name* (the RRset keeps the lowest TTL)."""
        rdatas = [
            dns.rdtypes.IN.AAAA.AAAA(
                dns.rdataclass.IN, dns.rdatatype.AAAA, str(ipaddress.IPv6Address(ip))
            )
            for ip in ips
        ]
        self._add_rdatas(name, dns.rdatatype.AAAA, rdatas, ttl)

    def add_cname(self, name: str, target: str, ttl: int = 300) -> None:
        """Make *name* an alias of *target* (replacing an earlier CNAME; no other data allowed)."""
        owner = _normalize_name(name)
        rdata = dns.rdtypes.ANY.CNAME.CNAME(
            dns.rdataclass.IN, dns.rdatatype.CNAME, _normalize_name(target)
        )
        with self._lock:
            node = self._nodes.get(owner)
            if node is not None and set(node.rrsets) - {dns.rdatatype.CNAME}:
                raise ValueError(f"{owner} already has records; a CNAME must stand alone")
            self._add_rdatas(name, dns.rdatatype.CNAME, [rdata], ttl)

    def set_behaviour(self, name: str, behaviour: FailureBehaviour) -> None:
        """Make queries reaching *name* fail: "servfail", "refused" or "timeout" (no answer)."""
        if behaviour not in get_args(FailureBehaviour):
            raise ValueError(
                f"unknown behaviour {behaviour!r}; expected one of {get_args(FailureBehaviour)}"
            )
        owner = _normalize_name(name)
        with self._lock:
            self._nodes.setdefault(owner, _ZoneNode()).behaviour = behaviour

    def resolve(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> ZoneResolution:
        """Answer one question like a recursive resolver whose whole world is this store.

        The first RRset of the answer is owned by *qname* exactly as asked (case preserved,
        wildcards synthesized); CNAME targets are followed inside the store.
        """
        answer: list[dns.rrset.RRset] = []
        current = qname
        visited: set[dns.name.Name] = set()
        with self._lock:
            for _hop in range(MAX_CNAME_HOPS + 1):
                node = self._find_node(current)
                if node is None:
                    if self._has_names_below(current):
                        return ZoneResolution(dns.rcode.NOERROR, tuple(answer))
                    return ZoneResolution(dns.rcode.NXDOMAIN, tuple(answer))
                if node.behaviour == "timeout":
                    return ZoneResolution(dns.rcode.NOERROR, drop=True)
                if node.behaviour == "servfail":
                    return ZoneResolution(dns.rcode.SERVFAIL)
                if node.behaviour == "refused":
                    return ZoneResolution(dns.rcode.REFUSED)
                if rdtype == dns.rdatatype.ANY:
                    answer.extend(_renamed(rrset, current) for rrset in node.rrsets.values())
                    return ZoneResolution(dns.rcode.NOERROR, tuple(answer))
                wanted = node.rrsets.get(rdtype)
                if wanted is not None:
                    answer.append(_renamed(wanted, current))
                    return ZoneResolution(dns.rcode.NOERROR, tuple(answer))
                alias = node.rrsets.get(dns.rdatatype.CNAME)
                if alias is None:
                    return ZoneResolution(dns.rcode.NOERROR, tuple(answer))
                answer.append(_renamed(alias, current))
                visited.add(current.canonicalize())
                current = alias[0].target
                if current.canonicalize() in visited:
                    logger.warning("CNAME loop at %s; answering SERVFAIL", current)
                    return ZoneResolution(dns.rcode.SERVFAIL)
        logger.warning(
            "CNAME chain from %s longer than %d hops; answering SERVFAIL", qname, MAX_CNAME_HOPS
        )
        return ZoneResolution(dns.rcode.SERVFAIL)

    def _add_rdatas(
        self,
        name: str,
        rdtype: dns.rdatatype.RdataType,
        rdatas: list[dns.rdata.Rdata],
        ttl: int,
    ) -> None:
        """Merge *rdatas* into the RRset of *rdtype* at *name*."""
        if not rdatas:
            raise ValueError(f"no data given for {name}")
        if not 0 <= ttl <= 2**31 - 1:
            raise ValueError(f"TTL {ttl} out of range")
        owner = _normalize_name(name)
        with self._lock:
            node = self._nodes.setdefault(owner, _ZoneNode())
            if rdtype != dns.rdatatype.CNAME and dns.rdatatype.CNAME in node.rrsets:
                raise ValueError(f"{owner} is a CNAME; it cannot hold other data")
            rrset = node.rrsets.get(rdtype)
            if rrset is None or rdtype == dns.rdatatype.CNAME:
                rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype)
                node.rrsets[rdtype] = rrset
            for rdata in rdatas:
                rrset.add(rdata, ttl)

    def _find_node(self, qname: dns.name.Name) -> _ZoneNode | None:
        """Return the node for *qname*: the exact owner, else the closest enclosing wildcard."""
        exact = self._nodes.get(qname)
        if exact is not None:
            return exact
        ancestor = qname
        while ancestor != dns.name.root and len(ancestor) > 0:
            ancestor = ancestor.parent()
            wildcard = self._nodes.get(dns.name.Name((b"*",) + ancestor.labels))
            if wildcard is not None:
                return wildcard
        return None

    def _has_names_below(self, qname: dns.name.Name) -> bool:
        """True when a stored owner name lies strictly below *qname* (an empty non-terminal)."""
        return any(owner != qname and owner.is_subdomain(qname) for owner in self._nodes)


def _renamed(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """Return a copy of *rrset* owned by *owner* (used for wildcard synthesis and case echo)."""
    return dns.rrset.from_rdata_list(owner, rrset.ttl, list(rrset))


class ReceivedQuery(NamedTuple):
    """One question the server received: lower-case name without the final dot, and type text."""

    qname: str
    qtype: str


class LocalDnsServer:
    """DNS server on 127.0.0.1 (UDP and TCP on the same port) answering from a :class:`DnsZone`.

    Runs in daemon threads between :meth:`start` and :meth:`stop`; usable as a context manager.
    """

    def __init__(self, records: DnsZone, host: str = "127.0.0.1", port: int = 0) -> None:
        """Prepare a server for *records*; *host* must be a loopback address, *port* 0 picks one."""
        if not ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).version != 4:
            raise ValueError(f"LocalDnsServer binds only to IPv4 loopback, not {host}")
        self.records = records
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._udp_socket: socket.socket | None = None
        self._tcp_socket: socket.socket | None = None
        self._stop_event = threading.Event()
        self._serve_thread: threading.Thread | None = None
        self._connection_threads: set[threading.Thread] = set()
        self._queries: list[ReceivedQuery] = []
        self._state_lock = threading.Lock()

    @property
    def port(self) -> int:
        """The UDP/TCP port the server listens on (only while started)."""
        if self._port is None:
            raise RuntimeError("LocalDnsServer is not started")
        return self._port

    @property
    def address(self) -> str:
        """The IP address the server listens on, ready for ``Resolver.nameservers``."""
        return self._host

    @property
    def endpoint(self) -> str:
        """``"ip:port"`` of the server, the same form the DNS collector reports."""
        return f"{self._host}:{self.port}"

    @property
    def queries(self) -> list[ReceivedQuery]:
        """A copy of every question received so far, in arrival order (dropped ones included)."""
        with self._state_lock:
            return list(self._queries)

    @property
    def query_count(self) -> int:
        """How many questions the server has received."""
        with self._state_lock:
            return len(self._queries)

    def clear_queries(self) -> None:
        """Forget the questions received so far."""
        with self._state_lock:
            self._queries.clear()

    def start(self) -> LocalDnsServer:
        """Bind the UDP and TCP sockets and start serving; returns the server itself."""
        if self._serve_thread is not None:
            raise RuntimeError("LocalDnsServer is already started")
        self._udp_socket, self._tcp_socket = self._bind_port_pair()
        self._port = self._udp_socket.getsockname()[1]
        self._stop_event.clear()
        self._serve_thread = threading.Thread(
            target=self._serve, name=f"local-dns-{self._port}", daemon=True
        )
        self._serve_thread.start()
        logger.debug("local DNS server listening on %s:%d (udp+tcp)", self._host, self._port)
        return self

    def stop(self) -> None:
        """Stop serving, join the threads (within 2 s in total) and close every socket."""
        if self._serve_thread is None:
            return
        deadline = time.monotonic() + _STOP_BUDGET_SECONDS
        self._stop_event.set()
        self._serve_thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._state_lock:
            connection_threads = list(self._connection_threads)
        for thread in connection_threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for sock in (self._udp_socket, self._tcp_socket):
            if sock is not None:
                sock.close()
        threads = [self._serve_thread, *connection_threads]
        still_running = [thread.name for thread in threads if thread.is_alive()]
        if still_running:
            logger.warning("local DNS server threads still running after stop: %s", still_running)
        self._serve_thread = None
        self._udp_socket = None
        self._tcp_socket = None
        self._port = None

    def __enter__(self) -> LocalDnsServer:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def _bind_port_pair(self) -> tuple[socket.socket, socket.socket]:
        """Bind a UDP and a TCP socket to the same port (retrying when port 0 collides on TCP)."""
        attempts = _PORT_PAIR_ATTEMPTS if self._requested_port == 0 else 1
        last_error: OSError | None = None
        for _attempt in range(attempts):
            udp_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp_socket.bind((self._host, self._requested_port))
                port = udp_socket.getsockname()[1]
                tcp_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                tcp_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    tcp_socket.bind((self._host, port))
                    tcp_socket.listen(16)
                except OSError as error:
                    tcp_socket.close()
                    raise error
            except OSError as error:
                udp_socket.close()
                last_error = error
                continue
            udp_socket.setblocking(False)
            tcp_socket.setblocking(False)
            return udp_socket, tcp_socket
        raise OSError(f"could not bind UDP and TCP on one port of {self._host}: {last_error}")

    def _serve(self) -> None:
        """Main loop: answer UDP datagrams and hand TCP connections to their own threads."""
        assert self._udp_socket is not None and self._tcp_socket is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp_socket, selectors.EVENT_READ, "udp")
            selector.register(self._tcp_socket, selectors.EVENT_READ, "tcp")
            while not self._stop_event.is_set():
                for key, _events in selector.select(timeout=_POLL_INTERVAL_SECONDS):
                    if key.data == "udp":
                        self._serve_udp_datagram()
                    else:
                        self._accept_tcp_connection()

    def _serve_udp_datagram(self) -> None:
        """Read one datagram and answer it (or not, for dropped queries)."""
        assert self._udp_socket is not None
        try:
            wire, client = self._udp_socket.recvfrom(_TCP_MESSAGE_LIMIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            logger.debug("UDP receive failed: %s", error)
            return
        reply = self._answer_wire(wire, over_tcp=False)
        if reply is None:
            return
        try:
            self._udp_socket.sendto(reply, client)
        except OSError as error:
            logger.debug("UDP reply to %s failed: %s", client, error)

    def _accept_tcp_connection(self) -> None:
        """Accept one TCP connection and serve it in a daemon thread."""
        assert self._tcp_socket is not None
        try:
            connection, client = self._tcp_socket.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            logger.debug("TCP accept failed: %s", error)
            return
        thread = threading.Thread(
            target=self._serve_tcp_connection,
            args=(connection, client),
            name=f"local-dns-tcp-{client[1]}",
            daemon=True,
        )
        with self._state_lock:
            self._connection_threads.add(thread)
        thread.start()

    def _serve_tcp_connection(self, connection: socket.socket, client: tuple[str, int]) -> None:
        """Answer length-prefixed queries on one connection until the client closes or we stop."""
        try:
            connection.settimeout(_POLL_INTERVAL_SECONDS)
            while not self._stop_event.is_set():
                length_prefix = self._receive_exactly(connection, 2)
                if length_prefix is None:
                    return
                (length,) = struct.unpack("!H", length_prefix)
                wire = self._receive_exactly(connection, length)
                if wire is None:
                    return
                reply = self._answer_wire(wire, over_tcp=True)
                if reply is None:
                    continue
                connection.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError as error:
            logger.debug("TCP connection from %s failed: %s", client, error)
        finally:
            connection.close()
            with self._state_lock:
                self._connection_threads.discard(threading.current_thread())

    def _receive_exactly(self, connection: socket.socket, size: int) -> bytes | None:
        """Read *size* bytes; None when the peer closes, stays idle too long, or we stop."""
        received = bytearray()
        idle_since = time.monotonic()
        while len(received) < size:
            if self._stop_event.is_set():
                return None
            try:
                chunk = connection.recv(size - len(received))
            except (socket.timeout, TimeoutError):  # one class only from Python 3.10
                if time.monotonic() - idle_since > _TCP_IDLE_LIMIT_SECONDS:
                    return None
                continue
            if not chunk:
                return None
            received.extend(chunk)
            idle_since = time.monotonic()
        return bytes(received)

    def _answer_wire(self, wire: bytes, over_tcp: bool) -> bytes | None:
        """Turn one query in wire format into the reply in wire format, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException as error:
            logger.debug("malformed query (%s); answering FORMERR", error)
            return _format_error_reply(wire)
        if query.flags & dns.flags.QR:
            return None
        response = dns.message.make_response(query, recursion_available=True)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response.to_wire()
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        self._record_query(question.name, question.rdtype)
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        resolution = self.records.resolve(question.name, question.rdtype)
        if resolution.drop:
            logger.debug(
                "dropping query %s %s", question.name, dns.rdatatype.to_text(question.rdtype)
            )
            return None
        response.set_rcode(resolution.rcode)
        if resolution.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            response.flags |= dns.flags.AA
        response.answer.extend(resolution.answer)
        return _to_wire_within_limit(query, response, over_tcp)

    def _record_query(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> None:
        """Remember one received question for tests."""
        received = ReceivedQuery(
            qname.to_text(omit_final_dot=True).lower(), dns.rdatatype.to_text(rdtype)
        )
        with self._state_lock:
            self._queries.append(received)
        logger.debug("query %s %s", received.qname, received.qtype)


def _to_wire_within_limit(
    query: dns.message.Message, response: dns.message.Message, over_tcp: bool
) -> bytes:
    """Render *response*; over UDP, replace an answer too big for the client with a TC reply."""
    if over_tcp:
        return response.to_wire(max_size=_TCP_MESSAGE_LIMIT)
    limit = _UDP_PAYLOAD_WITHOUT_EDNS
    if query.edns >= 0:
        limit = max(_UDP_PAYLOAD_WITHOUT_EDNS, query.payload)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer.clear()
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)


def _format_error_reply(wire: bytes) -> bytes | None:
    """Build a bare FORMERR reply echoing the query id, or None when there is no id to echo."""
    if len(wire) < 2:
        return None
    flags = dns.flags.QR | dns.flags.RA | int(dns.rcode.FORMERR)
    return wire[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)
