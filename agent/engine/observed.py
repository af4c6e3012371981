"""The host's own S3 traffic: which live TCP connections are S3, judged like targets. Pure.

The collector (:mod:`s3_route_agent.collectors.connections`) hands in what the kernel said about
the host's TCP sockets (:class:`SocketObservation`); this module decides, with the same facts and
the same engine as the targets (:func:`s3_route_agent.engine.verdict.path_for_address`):

* **which connections are S3** (:class:`S3Membership`): the peer is an S3 interface-endpoint ENI
  the inventory knows (this VPC's, or one found by address), is in the region's S3 prefix list
  (the list a gateway endpoint routes), is in the S3 address ranges (ip-ranges.json, any
  region), is an address an S3 name resolved to (the agent's own DNS answers, the DNS
  responses the host was seen receiving), or is the proxy S3 traffic uses;
* **each flow's path**, S3 region, endpoint and route target, and whether it meets
  ``observe.expect``; the agent's own connections are marked ``own`` and never change a status;
* **bytes counted once** (:func:`count_new_bytes`): per socket, what the counters grew since the
  last look, so a connection that lives across many cycles is counted once; connections opened
  and closed between two looks are not seen at all;
* **the NAT gateway data-processing cost** of the S3 bytes that took a NAT (:func:`nat_price`);
* **names** the host's software was seen resolving or using (:class:`ObservedName`), which feed
  the default targets (:func:`discovered_targets`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from s3_route_agent.engine.hostnames import parse_s3_host
from s3_route_agent.engine.model import (AddressVerdict, Expect, Facts, Inventory,
                                         NetworkInterface, PathKind, RouteTargetKind, Status,
                                         Target)
from s3_route_agent.engine.routes import S3RangeIndex, s3_range_index
from s3_route_agent.engine.verdict import path_for_address

logger = logging.getLogger(__name__)

# ---- what the kernel said ----------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def unwrap_address(ip: str) -> str:
    """``ip`` as a peer address: an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) becomes IPv4.
    (Cached: every look asks again about the same few addresses.)"""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@dataclass(frozen=True)
class TcpSocket:
    """One TCP socket as the kernel reports it (sock_diag, or /proc/net/tcp{,6}).

    ``family`` is the socket's own family: an IPv6 socket talking to an IPv4 peer is ``ipv6``
    with ``remote_ip`` ``::ffff:a.b.c.d`` (:attr:`remote_address` unwraps it). The byte counters
    come from ``struct tcp_info`` (sock_diag only; None from /proc, for TIME_WAIT and request
    mini-sockets, and on kernels whose ``tcp_info`` is too short):

    * ``bytes_sent``: ``tcpi_bytes_acked``, bytes the peer acknowledged (Linux 4.1+; it counts
      sequence space, so the SYN and a FIN add one each);
    * ``bytes_received``: ``tcpi_bytes_received``, bytes received in order (4.1+);
    * ``bytes_sent_wire``: ``tcpi_bytes_sent``, bytes put on the wire, retransmissions included,
      and ``bytes_retrans``: ``tcpi_bytes_retrans`` (both 4.19+).
    """

    family: str
    state: str
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    uid: int
    inode: int
    bytes_sent: int | None
    bytes_received: int | None
    bytes_sent_wire: int | None = None
    bytes_retrans: int | None = None
    source: str = "sock_diag"        # "sock_diag" or "proc"
    cgroup_id: int | None = None     # INET_DIAG_CGROUP_ID (cgroup v2 id); None from /proc

    @property
    def remote_address(self) -> str:
        """The peer's address, an IPv4-mapped IPv6 address unwrapped to IPv4."""
        return unwrap_address(self.remote_ip)

    @property
    def local_address(self) -> str:
        """The local address, an IPv4-mapped IPv6 address unwrapped to IPv4."""
        return unwrap_address(self.local_ip)

    @property
    def key(self) -> str:
        """What identifies this connection from one look to the next: the socket's inode and
        its four-tuple (an inode number is reused only after the socket is gone)."""
        return (f"{self.inode}|{self.local_address}|{self.local_port}|{self.remote_address}|"
                f"{self.remote_port}")


@dataclass(frozen=True)
class ProcessInfo:
    """The process holding a socket: pid, name (``/proc/PID/comm``) and real uid."""

    pid: int
    name: str
    uid: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"pid": self.pid, "name": self.name, "uid": self.uid}


@dataclass(frozen=True)
class SocketObservation:
    """One look at the host's TCP sockets whose peer is in the networks asked for."""

    time: float                                       # epoch seconds
    sockets: tuple[TcpSocket, ...] = ()
    processes: tuple[tuple[int, ProcessInfo], ...] = ()   # (inode, process) for mapped sockets
    own_pid: int = 0                                  # the agent's own pid
    source: str = "none"                              # "sock_diag", "proc", "mixed" or "none"
    problems: tuple[str, ...] = ()                    # what could not be seen, and why
    notes: tuple[str, ...] = ()                       # limits that lose no flow (uid kept, ...)
    elapsed_ms: float = 0.0

    def process_of(self, inode: int) -> ProcessInfo | None:
        """The process holding the socket ``inode``, when it could be mapped."""
        for held, process in self.processes:
            if held == inode:
                return process
        return None


@dataclass(frozen=True)
class DnsSighting:
    """A DNS response seen on the host (the sniffer): the name asked, its addresses, its CNAMEs."""

    time: float
    name: str
    addresses: tuple[str, ...]
    cnames: tuple[str, ...] = ()


@dataclass(frozen=True)
class LookupWindow:
    """The names the agent itself resolved in a run, and when: DNS responses to them inside
    the window (give or take ``slack`` seconds) are the agent's own, not the host's software's."""

    hosts: tuple[str, ...]
    started: float
    ended: float
    slack: float = 1.0

    def covers(self, sighting: DnsSighting) -> bool:
        """True when ``sighting`` is (most likely) the answer to the agent's own query."""
        return (sighting.name in self.hosts
                and self.started - self.slack <= sighting.time <= self.ended + self.slack)


# ---- which connections are S3 ------------------------------------------------------------------

class S3Membership:
    """Which peers are S3 for this host, and why (the first rule that holds, in this order):

    1. ``interface_endpoint``: a private address of an S3 interface-endpoint ENI the inventory
       knows (this VPC's S3 endpoints, or an endpoint ENI of another VPC found by address);
    2. ``prefix_list``: in the region's S3 prefix list (``com.amazonaws.REGION.s3``, the list a
       gateway endpoint's route points at; VPC user guide, "Gateway endpoints for Amazon S3");
    3. ``s3_ranges``: in the S3 address ranges of ip-ranges.json, any region (AWS General
       Reference, "AWS IP address ranges": service ``S3``);
    4. ``dns``: an address an S3 name resolved to (the agent's own answers, or DNS responses the
       host received): S3 names resolve into S3's ranges, so without the ranges file this still
       finds the addresses in use;
    5. ``proxy``: the address and port of the proxy that S3 traffic from this host uses (the
       config's ``proxies``, else HTTPS_PROXY as botocore applies it): the connection may carry
       S3 traffic, whatever the proxy's own route is.
    """

    def __init__(self, facts: Facts, ranges: S3RangeIndex | None = None,
                 proxies: Iterable[tuple[str, int]] = (),
                 dns_addresses: Iterable[str] = ()) -> None:
        """Rules from ``facts`` (inventory, S3 ranges), proxy (address, port) pairs and the
        addresses S3 names resolved to."""
        self.facts = facts
        self.ranges = ranges or s3_range_index(tuple(facts.s3_ranges))
        inventory = facts.inventory
        self._prefix_list: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
        self._endpoint_addresses: set[str] = set()
        if inventory is not None:
            plist = (inventory.prefix_list(inventory.s3_prefix_list_id)
                     if inventory.s3_prefix_list_id else None)
            self._prefix_list = tuple(_networks(plist.cidrs if plist else ()))
            for eni in inventory.interfaces:
                if is_s3_endpoint_interface(eni, inventory):
                    self._endpoint_addresses.update(_canonical(a) for a in eni.addresses)
        self._proxies = {(_canonical(ip), int(port)) for ip, port in proxies}
        self._dns = {_canonical(ip) for ip in dns_addresses}

    def reason(self, ip: str, port: int) -> str | None:
        """Why a connection to ``ip``:``port`` is S3 (a rule name above), or None."""
        address = _canonical(ip)
        if address in self._endpoint_addresses:
            return "interface_endpoint"
        value = ipaddress.ip_address(address)
        if any(value.version == net.version and value in net for net in self._prefix_list):
            return "prefix_list"
        if self.ranges.region_for(address) is not None:
            return "s3_ranges"
        if address in self._dns:
            return "dns"
        if (address, int(port)) in self._proxies:
            return "proxy"
        return None

    def networks(self) -> tuple[str, ...]:
        """Every network a peer must be in to be S3 by these rules: the kernel's filter."""
        out: dict[str, None] = {}
        for net in self._prefix_list:
            out[str(net)] = None
        for entry in self.facts.s3_ranges:
            out[entry.network] = None
        for address in (*self._endpoint_addresses, *self._dns,
                        *(ip for ip, _ in self._proxies)):
            out[str(ipaddress.ip_network(address))] = None
        return tuple(out)

    @property
    def proxies(self) -> frozenset[tuple[str, int]]:
        """The proxies (address, port) S3 traffic uses."""
        return frozenset(self._proxies)


def is_s3_endpoint_interface(eni: NetworkInterface, inventory: Inventory) -> bool:
    """True for an ENI of an S3 interface endpoint: of one of this VPC's S3 endpoints (the
    inventory lists only those), or of an endpoint in another VPC that the inventory found by
    address (centralised endpoints, as :func:`~s3_route_agent.engine.verdict.path_for_address`
    treats them)."""
    if not eni.endpoint_id:
        return False
    return inventory.endpoint(eni.endpoint_id) is not None or eni.vpc_id != inventory.vpc_id


def _canonical(ip: str) -> str:
    return unwrap_address(ip)


def _networks(cidrs: Iterable[str]) -> Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    for cidr in cidrs:
        try:
            yield ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            logger.warning("ignoring malformed prefix-list entry %r", cidr)


# ---- bytes counted once --------------------------------------------------------------------------

def count_new_bytes(sockets: Iterable[TcpSocket],
                    previous: Mapping[str, tuple[int, int]],
                    ) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """Per socket, the bytes (sent, received) its counters grew since the last look; and the
    ledger to keep for the next look.

    * A socket not seen before counts everything its counters hold: it opened since the last
      look, or this is the first look, and its bytes have not been counted yet.
    * A socket seen before counts the growth; counters that went down mean another socket got
      the same key (the old one is gone), so everything counts.
    * A socket without counters (/proc fallback, mini-sockets) counts nothing and is not kept.
    * Sockets gone since the last look drop out of the ledger: the bytes they moved after the
      last look are never seen (nor are connections opened and closed between two looks).
    """
    new: dict[str, tuple[int, int]] = {}
    ledger: dict[str, tuple[int, int]] = {}
    for sock in sockets:
        if sock.bytes_sent is None or sock.bytes_received is None:
            continue
        now = (int(sock.bytes_sent), int(sock.bytes_received))
        before = previous.get(sock.key)
        if before is None or now[0] < before[0] or now[1] < before[1]:
            grown = now
        else:
            grown = (now[0] - before[0], now[1] - before[1])
        new[sock.key] = grown
        ledger[sock.key] = now
    return new, ledger


# ---- the NAT gateway's data-processing charge ----------------------------------------------------

# USD per GB of data a NAT gateway processes (both directions), from the Amazon VPC pricing page
# (https://aws.amazon.com/vpc/pricing/, "NAT Gateway pricing", "Price per GB data processed"), as
# listed there for these regions when this table was written; the page's own worked example
# quotes US East at $0.045 per GB. A NAT gateway is "charged for each hour that your NAT gateway
# is available and each Gigabyte of data that it processes" (VPC user guide, "Pricing for NAT
# gateways", https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-pricing.html). Prices
# change and contracts differ: ``observe.nat_price_per_gb`` replaces this table.
NAT_PRICE_PER_GB: dict[str, float] = {
    "us-east-1": 0.045, "us-east-2": 0.045, "us-west-1": 0.048, "us-west-2": 0.045,
    "eu-west-1": 0.048, "eu-west-2": 0.050, "eu-central-1": 0.052,
    "ap-northeast-1": 0.062, "ap-southeast-1": 0.059, "ap-southeast-2": 0.059,
    "sa-east-1": 0.093,
}
FALLBACK_PRICE_REGION = "us-east-1"
# The estimate takes a billed GB as 2**30 bytes (the lower of the two readings of "GB").
BYTES_PER_GB = 2 ** 30
PRICING_PAGE = "https://aws.amazon.com/vpc/pricing/"


def nat_price(region: str | None, configured: float | None = None) -> tuple[float, str]:
    """The NAT data-processing price per GB to estimate with, and where it comes from."""
    if configured is not None:
        return float(configured), "config (observe.nat_price_per_gb)"
    if region in NAT_PRICE_PER_GB:
        return NAT_PRICE_PER_GB[region], f"public price for {region} ({PRICING_PAGE})"
    return (NAT_PRICE_PER_GB[FALLBACK_PRICE_REGION],
            f"{region or 'this region'} is not in the agent's price table: the {FALLBACK_PRICE_REGION}"
            f" public price ({PRICING_PAGE}); set observe.nat_price_per_gb")


def usd_for(byte_count: int, price_per_gb: float) -> float:
    """The estimated charge for ``byte_count`` bytes at ``price_per_gb``."""
    return round(byte_count / BYTES_PER_GB * price_per_gb, 6)


# ---- the state kept between looks ----------------------------------------------------------------

@dataclass(frozen=True)
class NameRecord:
    """A name the host was seen resolving or using, as kept in ``state_dir`` between runs."""

    name: str
    addresses: tuple[str, ...]
    first_seen: float
    last_seen: float
    resolved: bool = False           # a DNS response to the host's software (the sniffer)
    used_at: float | None = None     # last time a flow of the host's software went to it


@dataclass(frozen=True)
class ObservedState:
    """What one look leaves for the next: the byte ledger, the running totals, the names."""

    since: float                                          # when counting started
    ledger: tuple[tuple[str, int, int], ...] = ()         # (socket key, sent, received)
    totals: tuple[tuple[str, int, int], ...] = ()         # (path, sent, received), cumulative
    nat_bytes: int = 0                                    # cumulative bytes through a NAT
    names: tuple[NameRecord, ...] = ()

    def ledger_map(self) -> dict[str, tuple[int, int]]:
        """The ledger as socket key -> (sent, received)."""
        return {key: (sent, received) for key, sent, received in self.ledger}

    def totals_map(self) -> dict[str, tuple[int, int]]:
        """The totals as path -> (sent, received)."""
        return {path: (sent, received) for path, sent, received in self.totals}


# ---- the report section ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Flow:
    """One live connection of the host to S3, judged like a target's address."""

    remote_ip: str
    remote_port: int
    local_ip: str
    local_port: int
    family: str                      # of the peer address ("ipv4" or "ipv6")
    state: str                       # TCP state (ESTABLISHED, SYN_SENT, ...)
    path: PathKind
    s3_region: str | None
    endpoint_id: str | None
    via: str | None                  # route target (nat-..., igw-..., vpce-...), or the proxy
    s3_because: str                  # the S3Membership rule that made it S3
    hostname: str | None
    process: ProcessInfo | None
    uid: int                         # the socket's owner (kept when no process is known)
    bytes_sent: int | None           # the socket's counters (None: /proc, no counters)
    bytes_received: int | None
    new_bytes: int                   # counted at this look (growth since the last one)
    own: bool                        # the agent's own connection (test transfer, AWS calls)
    status: Status
    through_nat: bool = False
    evidence: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        """The socket's bytes both ways (0 without counters)."""
        return (self.bytes_sent or 0) + (self.bytes_received or 0)

    @property
    def who(self) -> str:
        """``java (pid 4242)``, or ``uid 1000`` when the process is not known."""
        if self.process is not None:
            return f"{self.process.name} (pid {self.process.pid})"
        return f"uid {self.uid}"

    def describe(self) -> str:
        """``java (pid 4242) -> 52.216.8.10 S3 us-east-1 public via nat-0abc``: who, where, how."""
        where = self.remote_ip + (f" ({self.hostname})" if self.hostname else "")
        parts = [f"{self.who} -> {where}"]
        if self.s3_region:
            parts.append(f"S3 {self.s3_region}")
        elif self.s3_because == "interface_endpoint":
            parts.append("S3")
        parts.append(self.path.value)
        if self.endpoint_id:
            parts.append(f"via {self.endpoint_id}")
        elif self.via:
            parts.append(f"via {self.via}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"remote_ip": self.remote_ip, "remote_port": self.remote_port,
                "local_ip": self.local_ip, "local_port": self.local_port,
                "family": self.family, "state": self.state, "path": self.path.value,
                "s3_region": self.s3_region, "endpoint_id": self.endpoint_id, "via": self.via,
                "s3_because": self.s3_because, "hostname": self.hostname,
                "process": self.process.to_dict() if self.process else None, "uid": self.uid,
                "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "new_bytes": self.new_bytes, "own": self.own, "status": self.status.name,
                "through_nat": self.through_nat, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class PathTotals:
    """The flows of one path: how many, their bytes now, counted at this look, counted so far."""

    path: str
    flows: int = 0
    bytes_sent: int = 0              # the live sockets' counters
    bytes_received: int = 0
    new_bytes: int = 0               # counted at this look
    total_sent: int = 0              # counted since ObservedSection.since
    total_received: int = 0

    @property
    def bytes(self) -> int:
        """The live sockets' bytes, both ways."""
        return self.bytes_sent + self.bytes_received

    @property
    def total_bytes(self) -> int:
        """Counted since counting started, both ways."""
        return self.total_sent + self.total_received

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the path is the key of the summary)."""
        return {"flows": self.flows, "bytes": self.bytes, "bytes_sent": self.bytes_sent,
                "bytes_received": self.bytes_received, "new_bytes": self.new_bytes,
                "total_bytes": self.total_bytes, "total_sent": self.total_sent,
                "total_received": self.total_received}


@dataclass(frozen=True)
class NatCost:
    """The estimated NAT gateway data-processing charge of the S3 bytes that took a NAT."""

    price_per_gb: float
    price_source: str
    new_bytes: int                   # through a NAT, counted at this look
    total_bytes: int                 # through a NAT, counted since ``since``
    since: float
    nat_gateways: tuple[str, ...] = ()

    @property
    def new_usd(self) -> float:
        """The estimate for the bytes counted at this look."""
        return usd_for(self.new_bytes, self.price_per_gb)

    @property
    def total_usd(self) -> float:
        """The estimate for every byte counted since ``since``."""
        return usd_for(self.total_bytes, self.price_per_gb)

    def to_dict(self, iso: Any = None) -> dict[str, Any]:
        """JSON-ready form; ``iso`` formats epoch seconds (default: the number)."""
        fmt = iso or (lambda t: t)
        return {"price_per_gb": self.price_per_gb, "price_source": self.price_source,
                "new_bytes": self.new_bytes, "new_usd": self.new_usd,
                "total_bytes": self.total_bytes, "total_usd": self.total_usd,
                "since": fmt(self.since), "nat_gateways": list(self.nat_gateways),
                "estimate": "payload bytes both ways (TCP/IP headers and retransmissions not "
                            "counted), at the price per GB; data transfer charges are extra"}


@dataclass(frozen=True)
class ObservedName:
    """A name the host's software was seen resolving (``resolved``) or using (``used``: a live
    flow of the host's software goes to one of its addresses)."""

    name: str
    addresses: tuple[str, ...]
    resolved: bool
    used: bool
    first_seen: float
    last_seen: float
    processes: tuple[str, ...] = ()  # who uses it now ("java (pid 4242)")

    def to_dict(self, iso: Any = None) -> dict[str, Any]:
        """JSON-ready form; ``iso`` formats epoch seconds (default: the number)."""
        fmt = iso or (lambda t: t)
        return {"name": self.name, "addresses": list(self.addresses), "resolved": self.resolved,
                "used": self.used, "first_seen": fmt(self.first_seen),
                "last_seen": fmt(self.last_seen), "processes": list(self.processes)}


@dataclass(frozen=True)
class ObservedSection:
    """The report's ``observed`` section: the host's live S3 flows, judged; totals per path; the
    NAT cost estimate; the names seen; and what could not be seen."""

    expect: Expect
    time: float
    flows: tuple[Flow, ...] = ()
    summary: tuple[PathTotals, ...] = ()
    names: tuple[ObservedName, ...] = ()
    nat_cost: NatCost | None = None
    source: str = "none"
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    elapsed_ms: float = 0.0

    @property
    def bad_flows(self) -> tuple[Flow, ...]:
        """Flows of the host's software whose path does not meet ``expect``, most bytes first."""
        bad = [f for f in self.flows if f.status is Status.CRITICAL]
        return tuple(sorted(bad, key=lambda f: -f.bytes))

    @property
    def status(self) -> Status:
        """CRITICAL when a flow of the host's software misses ``expect``; WARNING when the
        connections could not be seen at all; else OK."""
        if self.bad_flows:
            return Status.CRITICAL
        if self.source == "none" and self.errors:
            return Status.WARNING
        return Status.OK

    def totals(self, path: PathKind | str) -> PathTotals:
        """The summary of one path (zeros when it has none)."""
        key = path.value if isinstance(path, PathKind) else path
        return next((t for t in self.summary if t.path == key), PathTotals(key))

    def name(self, host: str) -> ObservedName | None:
        """The observed entry for ``host`` (case and a trailing dot ignored), if any."""
        wanted = normal_name(host)
        return next((n for n in self.names if n.name == wanted), None)

    def was_seen(self, host: str) -> bool:
        """True when this host's software was seen resolving ``host`` or using its addresses
        (now, or in an earlier run kept in ``state_dir``)."""
        return self.name(host) is not None

    def seen_names(self) -> tuple[str, ...]:
        """Every name this host's software was seen resolving or using, most recent first."""
        return tuple(n.name for n in self.names)

    def used_names(self) -> tuple[str, ...]:
        """The names live flows of the host's software go to at this look."""
        return tuple(n.name for n in self.names if n.used)

    def to_dict(self, iso: Any = None) -> dict[str, Any]:
        """JSON-ready form; ``iso`` formats epoch seconds (default: the number)."""
        fmt = iso or (lambda t: t)
        return {"expect": self.expect.value, "status": self.status.name, "source": self.source,
                "flows": [f.to_dict() for f in self.flows],
                "summary": {t.path: t.to_dict() for t in self.summary},
                "names": [n.to_dict(fmt) for n in self.names],
                "nat_cost": self.nat_cost.to_dict(fmt) if self.nat_cost else None,
                "errors": list(self.errors), "notes": list(self.notes),
                "elapsed_ms": round(self.elapsed_ms, 2),
                "limits": "connections opened and closed between two looks are not seen; "
                          "bytes a connection moves after the last look before it closes are "
                          "not counted"}


def normal_name(host: str) -> str:
    """A DNS name as the report keeps it: lower case, no trailing dot."""
    return host.strip().rstrip(".").lower()


# ---- judging one look ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ObserveRules:
    """What a look is judged against (from the config): the expectation, the price, the bounds
    on the names kept."""

    expect: Expect = Expect.PRIVATE
    nat_price_per_gb: float | None = None
    max_names: int = 256
    name_max_age_seconds: float = 7 * 86400.0


def judge_flow(sock: TcpSocket, process: ProcessInfo | None, because: str, facts: Facts,
               ranges: S3RangeIndex, expect: Expect, own: bool, hostname: str | None,
               new_bytes: int, verdict: AddressVerdict | None = None) -> Flow:
    """The path of one S3 connection (the same engine as a target's address) and its status;
    ``verdict`` is the peer address's, when already made (many connections share a peer)."""
    remote = sock.remote_address
    family = "ipv6" if ipaddress.ip_address(remote).version == 6 else "ipv4"
    evidence: list[str] = []
    through_nat = False
    if because == "proxy":
        # Through a proxy the S3 traffic takes the proxy's path, whatever this host's routes say
        # (the same ruling as a target's: live/apply.py).
        path, region, endpoint, via = PathKind.PROXY, None, None, f"proxy {remote}:{sock.remote_port}"
        own_path = verdict or path_for_address(remote, facts, ranges)
        evidence.append(f"{remote}:{sock.remote_port} is the proxy S3 traffic from this host "
                        f"uses; the proxy address itself takes path {own_path.path.value}.")
    else:
        verdict = verdict or path_for_address(remote, facts, ranges)
        path, region, endpoint = verdict.path, verdict.s3_region, verdict.endpoint_id
        route = verdict.route.route if verdict.route else None
        via = route.target_id if route else None
        through_nat = bool(route is not None and path is PathKind.PUBLIC
                           and route.target_kind is RouteTargetKind.NAT_GATEWAY)
        evidence.extend(verdict.evidence)
    if own:
        status = Status.OK
    elif path is PathKind.UNKNOWN:
        status = Status.UNKNOWN
    elif expect.allows(path):
        status = Status.OK
    else:
        status = Status.CRITICAL
    return Flow(remote_ip=remote, remote_port=sock.remote_port, local_ip=sock.local_address,
                local_port=sock.local_port, family=family, state=sock.state, path=path,
                s3_region=region, endpoint_id=endpoint, via=via, s3_because=because,
                hostname=hostname, process=process, uid=sock.uid, bytes_sent=sock.bytes_sent,
                bytes_received=sock.bytes_received, new_bytes=new_bytes, own=own,
                status=status, through_nat=through_nat, evidence=tuple(evidence))


def host_sightings(sightings: Iterable[DnsSighting],
                   windows: Iterable[LookupWindow] = ()) -> tuple[DnsSighting, ...]:
    """The DNS responses that went to the host's software: the agent's own lookups left out."""
    windows = tuple(windows)
    return tuple(s for s in sightings if not any(w.covers(s) for w in windows))


def is_s3_sighting(sighting: DnsSighting, membership: S3Membership | None = None) -> bool:
    """True when a DNS response is about S3: the name (or a CNAME in its chain) is an S3 name,
    or an address it gave is S3 by the membership rules (a custom name aliased to S3)."""
    if any(parse_s3_host(n).is_s3 for n in (sighting.name, *sighting.cnames)):
        return True
    if membership is None:
        return False
    return any(membership.reason(a, 443) in ("interface_endpoint", "prefix_list", "s3_ranges")
               for a in sighting.addresses)


def update_names(records: Iterable[NameRecord], sightings: Iterable[DnsSighting],
                 used: Mapping[str, Sequence[str]], now: float, rules: ObserveRules,
                 ) -> tuple[NameRecord, ...]:
    """The names kept for the next look: the S3 sightings of the host's software added, the
    names live flows used (``used``: name -> its addresses) stamped, old ones expired, the most
    recent ``rules.max_names`` kept."""
    kept: dict[str, NameRecord] = {r.name: r for r in records}
    for sight in sorted(sightings, key=lambda s: s.time):
        name = normal_name(sight.name)
        old = kept.get(name)
        addresses = tuple(dict.fromkeys(sight.addresses))
        kept[name] = NameRecord(name=name, addresses=addresses or (old.addresses if old else ()),
                                first_seen=old.first_seen if old else sight.time,
                                last_seen=max(sight.time, old.last_seen if old else sight.time),
                                resolved=True, used_at=old.used_at if old else None)
    for name, addresses in used.items():
        name = normal_name(name)
        old = kept.get(name)
        kept[name] = NameRecord(name=name, addresses=old.addresses if old else tuple(addresses),
                                first_seen=old.first_seen if old else now,
                                last_seen=now, resolved=old.resolved if old else False,
                                used_at=now)
    fresh = [r for r in kept.values() if now - r.last_seen <= rules.name_max_age_seconds]
    fresh.sort(key=lambda r: (-r.last_seen, r.name))
    return tuple(fresh[:rules.max_names])


def hostname_index(records: Iterable[NameRecord],
                   answers: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Address -> the name to show for a flow to it: the name the host's software most recently
    resolved to that address; else one of the agent's own DNS answers of this run; else a name
    kept from earlier runs (S3 addresses serve many names: this is the likeliest name, not
    proof)."""
    index: dict[str, str] = {}
    kept = sorted(records, key=lambda r: (r.resolved, r.last_seen))
    for record in (r for r in kept if not r.resolved):
        for address in record.addresses:
            index[_canonical(address)] = record.name
    for host, addresses in answers.items():
        for address in addresses:
            index[_canonical(address)] = normal_name(host)
    for record in (r for r in kept if r.resolved):      # most recent last: it wins
        for address in record.addresses:
            index[_canonical(address)] = record.name
    return index


def judge_observation(observation: SocketObservation, facts: Facts, membership: S3Membership,
                      state: ObservedState, rules: ObserveRules,
                      answers: Mapping[str, Sequence[str]] | None = None,
                      sightings: Iterable[DnsSighting] = (),
                      errors: Iterable[str] = ()) -> tuple[ObservedSection, ObservedState]:
    """Judge one look: the flows (S3 only), bytes counted once, totals, NAT cost, names.

    ``answers`` are the agent's own DNS answers of this run (host -> addresses); ``sightings``
    the DNS responses the host's software received (the agent's own already left out).
    Returns the section and the state to keep for the next look.
    """
    now = observation.time
    sightings = tuple(s for s in sightings if is_s3_sighting(s, membership))
    ranges = membership.ranges
    s3_sockets = [(s, membership.reason(s.remote_address, s.remote_port))
                  for s in observation.sockets]
    s3_sockets = [(s, why) for s, why in s3_sockets if why is not None]
    new_bytes, ledger = count_new_bytes((s for s, _ in s3_sockets), state.ledger_map())
    names_before = update_names(state.names, sightings, {}, now, rules)
    hostnames = hostname_index(names_before, answers or {})
    flows: list[Flow] = []
    totals = state.totals_map()
    nat_new = 0
    gateways: dict[str, None] = {}
    verdicts: dict[str, AddressVerdict] = {}
    processes = dict(observation.processes)
    for sock, because in s3_sockets:
        process = processes.get(sock.inode)
        own = process is not None and process.pid == observation.own_pid
        grown = new_bytes.get(sock.key, (0, 0))
        remote = sock.remote_address
        if remote not in verdicts:
            verdicts[remote] = path_for_address(remote, facts, ranges)
        flow = judge_flow(sock, process, because, facts, ranges, rules.expect, own,
                          hostnames.get(remote), grown[0] + grown[1], verdicts[remote])
        flows.append(flow)
        sent, received = totals.get(flow.path.value, (0, 0))
        totals[flow.path.value] = (sent + grown[0], received + grown[1])
        if flow.through_nat:
            nat_new += grown[0] + grown[1]
            if flow.via:
                gateways[flow.via] = None
    flows.sort(key=lambda f: (-f.bytes, f.remote_ip, f.remote_port, f.local_port))
    summary = []
    for path in sorted({f.path.value for f in flows} | set(totals)):
        of_path = [f for f in flows if f.path.value == path]
        total_sent, total_received = totals.get(path, (0, 0))
        summary.append(PathTotals(
            path=path, flows=len(of_path), bytes_sent=sum(f.bytes_sent or 0 for f in of_path),
            bytes_received=sum(f.bytes_received or 0 for f in of_path),
            new_bytes=sum(f.new_bytes for f in of_path), total_sent=total_sent,
            total_received=total_received))
    price, source = nat_price(facts.region, rules.nat_price_per_gb)
    cost = NatCost(price_per_gb=price, price_source=source, new_bytes=nat_new,
                   total_bytes=state.nat_bytes + nat_new, since=state.since,
                   nat_gateways=tuple(gateways))

    used: dict[str, list[str]] = {}
    who: dict[str, list[str]] = {}
    for flow in flows:
        if flow.hostname and not flow.own:
            used.setdefault(flow.hostname, []).append(flow.remote_ip)
            who.setdefault(flow.hostname, []).append(flow.who)
    records = update_names(state.names, sightings, used, now, rules)
    names = tuple(ObservedName(name=r.name, addresses=r.addresses, resolved=r.resolved,
                               used=r.name in used, first_seen=r.first_seen,
                               last_seen=r.last_seen,
                               processes=tuple(dict.fromkeys(who.get(r.name, ()))))
                  for r in records)
    section = ObservedSection(expect=rules.expect, time=now, flows=tuple(flows),
                              summary=tuple(summary), names=names, nat_cost=cost,
                              source=observation.source,
                              errors=tuple(observation.problems) + tuple(errors),
                              notes=observation.notes, elapsed_ms=observation.elapsed_ms)
    new_state = ObservedState(
        since=state.since, ledger=tuple((k, v[0], v[1]) for k, v in sorted(ledger.items())),
        totals=tuple((p, v[0], v[1]) for p, v in sorted(totals.items())),
        nat_bytes=state.nat_bytes + nat_new, names=records)
    return section, new_state


# ---- discovered names feed the checks --------------------------------------------------------------

@dataclass(frozen=True)
class DiscoveredTarget:
    """A target added to the defaults because the host was seen resolving or using its name."""

    target: Target
    evidence: str


def discovered_targets(records: Iterable[NameRecord], limit: int, known_hosts: Iterable[str],
                       expect: Expect, iso: Any = None) -> tuple[DiscoveredTarget, ...]:
    """At most ``limit`` S3 names the host's software was seen resolving or using (most recent
    first) that are not targets already, as targets with the sentence that says why."""
    if limit <= 0:
        return ()
    fmt = iso or (lambda t: t)
    known = {normal_name(h) for h in known_hosts}
    candidates = [r for r in records if r.name not in known and parse_s3_host(r.name).is_s3
                  and (r.resolved or r.used_at is not None)]
    candidates.sort(key=lambda r: (-r.last_seen, r.name))
    out = []
    for record in candidates[:limit]:
        how = ("resolving it" if record.resolved else "") + (
            " and " if record.resolved and record.used_at is not None else "") + (
            "connecting to its addresses" if record.used_at is not None else "")
        evidence = (f"{record.name} is checked because this host's software was seen {how} "
                    f"(last {fmt(record.last_seen)}); the default targets include at most "
                    f"{limit} such name(s), most recently seen first (observe.discovered_targets;"
                    f" {len(candidates)} candidate(s)).")
        out.append(DiscoveredTarget(Target(name=f"observed-{record.name}", host=record.name,
                                           expect=expect, bucket=parse_s3_host(record.name).bucket,
                                           origin="observed"),
                                    evidence))
    return tuple(out)
