"""The host's TCP sockets, IPv4 and IPv6, as the kernel reports them (Linux, standard library).

Two sources, one result type (:class:`~s3_route_agent.engine.observed.TcpSocket`):

* **sock_diag** (netlink ``NETLINK_SOCK_DIAG``; netlink(7), sock_diag(7)): by default one
  ``TCPDIAG_GETSOCK`` dump (``struct inet_diag_req``), which the kernel answers for IPv4 and
  IPv6 in one walk of its TCP hash table; ``SOCK_DIAG_BY_FAMILY`` dumps
  (``struct inet_diag_req_v2``), one per family, when that is refused. The kernel filters by TCP
  state (``idiag_states``) and, given networks, by peer address (an ``INET_DIAG_REQ_BYTECODE``
  program). Each socket: ``struct inet_diag_msg`` (addresses, ports, state, uid, inode),
  ``INET_DIAG_INFO`` (``struct tcp_info``: ``tcpi_bytes_acked``, ``tcpi_bytes_received``,
  ``tcpi_bytes_sent``, ``tcpi_bytes_retrans``; shorter on older kernels) and
  ``INET_DIAG_CGROUP_ID``. No privilege is needed.
  Kernel headers: ``include/uapi/linux/netlink.h``, ``sock_diag.h``, ``inet_diag.h``, ``tcp.h``,
  ``rtnetlink.h`` (``struct rtattr``); code: ``net/ipv4/inet_diag.c``, ``net/ipv4/tcp_diag.c``.
* **/proc/net/tcp and /proc/net/tcp6** (proc(5); printed by ``get_tcp4_sock`` and
  ``get_tcp6_sock`` in ``net/ipv4/tcp_ipv4.c`` and ``net/ipv6/tcp_ipv6.c``): the fallback when
  netlink is refused (seccomp, ``RestrictAddressFamilies=`` without ``AF_NETLINK``, a kernel
  without ``inet_diag``). It has uid and inode but no byte counters.

Both show one network namespace: the one the netlink socket was created in (the caller's,
unless :class:`TcpDumper` is given another ``netlink_factory``), and the one of the ``proc_net``
folder read. Which process holds a socket is :mod:`s3_route_agent.collectors.processes`.
"""

from __future__ import annotations

import bisect
import errno
import heapq
import ipaddress
import itertools
import logging
import os
import socket
import struct
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from s3_route_agent.engine.observed import TcpSocket

logger = logging.getLogger(__name__)

# --- netlink constants (include/uapi/linux/netlink.h, sock_diag.h, inet_diag.h) -----------------

NETLINK_SOCK_DIAG = 4          # netlink.h
SOCK_DIAG_BY_FAMILY = 20       # sock_diag.h
TCPDIAG_GETSOCK = 18           # inet_diag.h: the original request (struct inet_diag_req); dumps
                               # both families in one walk of the TCP hash (sdiag_family AF_UNSPEC)
NLMSG_NOOP = 1                 # netlink.h
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_DUMP_INTR = 0x10         # the dump was interrupted: the set of sockets changed under it
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
INET_DIAG_INFO = 2             # inet_diag.h, enum { INET_DIAG_NONE, INET_DIAG_MEMINFO, INET_DIAG_INFO, ... }
INET_DIAG_CGROUP_ID = 21       # inet_diag.h: __u64 cgroup v2 id of the socket (Linux 5.9+)
INET_DIAG_REQ_BYTECODE = 1     # inet_diag.h, request attribute: a filter program
INET_DIAG_BC_JMP = 1           # inet_diag.h, enum { INET_DIAG_BC_NOP, INET_DIAG_BC_JMP, ... }
INET_DIAG_BC_D_COND = 8        # destination (peer) address/prefix[/port] condition

# struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags; __u32 nlmsg_seq;
#                   __u32 nlmsg_pid; }                                              (16 bytes)
_NLMSGHDR = struct.Struct("=IHHII")
# struct inet_diag_req_v2 { __u8 sdiag_family; __u8 sdiag_protocol; __u8 idiag_ext; __u8 pad;
#                           __u32 idiag_states; struct inet_diag_sockid id; }       (56 bytes)
# struct inet_diag_sockid { __be16 idiag_sport; __be16 idiag_dport; __be32 idiag_src[4];
#                           __be32 idiag_dst[4]; __u32 idiag_if; __u32 idiag_cookie[2]; } (48)
_INET_DIAG_REQ_V2 = struct.Struct("=BBBBI4x16s16sIII")
# struct inet_diag_msg { __u8 idiag_family; __u8 idiag_state; __u8 idiag_timer;
#                        __u8 idiag_retrans; struct inet_diag_sockid id; __u32 idiag_expires;
#                        __u32 idiag_rqueue; __u32 idiag_wqueue; __u32 idiag_uid;
#                        __u32 idiag_inode; }                                      (72 bytes)
# Unpacked: family, state, sport/dport (two bytes each, big-endian), src, dst, uid, inode.
_INET_DIAG_MSG = struct.Struct("=BB2x2s2s16s16s12x12xII")
# struct inet_diag_req { __u8 idiag_family; __u8 idiag_src_len; __u8 idiag_dst_len;
#                        __u8 idiag_ext; struct inet_diag_sockid id; __u32 idiag_states;
#                        __u32 idiag_dbs; }                                        (60 bytes)
_INET_DIAG_REQ_COMPAT = struct.Struct("=BBBB48xII")
# struct inet_diag_bc_op { unsigned char code; unsigned char yes; unsigned short no; }
# struct inet_diag_hostcond { __u8 family; __u8 prefix_len; int port; __be32 addr[]; }
_BC_OP = struct.Struct("=BBH")
_HOSTCOND = struct.Struct("=BB2xi")
_NLATTR = struct.Struct("=HH")
_INET_DIAG_MSG_LEN = 72
_PORTS = struct.Struct(">HH")
_RTATTR = struct.Struct("=HH")  # struct rtattr { unsigned short rta_len; unsigned short rta_type; }
_NLMSGERR = struct.Struct("=i")  # struct nlmsgerr { int error; struct nlmsghdr msg; } / DONE: int

# struct tcp_info (include/uapi/linux/tcp.h): byte offsets of the fields read here. The kernel
# copies min(sizeof its struct tcp_info, attribute room), so older kernels send a shorter one;
# a field is read only when the attribute covers it.
TCPI_BYTES_ACKED = 120      # __u64, RFC 4898 tcpEStatsAppHCThruOctetsAcked   (Linux 4.1+)
TCPI_BYTES_RECEIVED = 128   # __u64, RFC 4898 tcpEStatsAppHCThruOctetsReceived (Linux 4.1+)
TCPI_BYTES_SENT = 200       # __u64, RFC 4898 tcpEStatsPerfHCDataOctetsOut    (Linux 4.19+)
TCPI_BYTES_RETRANS = 208    # __u64, RFC 4898 tcpEStatsPerfOctetsRetrans      (Linux 4.19+)
_U64 = struct.Struct("=Q")
_U64X2 = struct.Struct("=QQ")

# --- TCP states (include/net/tcp_states.h) --------------------------------------------------

TCP_STATES: Dict[int, str] = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "NEW_SYN_RECV", 13: "BOUND_INACTIVE",
}
_STATE_NUMBERS = {name: number for number, name in TCP_STATES.items()}


def state_mask(*names: str) -> int:
    """The ``idiag_states`` bit mask (``TCPF_<state> = 1 << TCP_<state>``) of the named states."""
    mask = 0
    for name in names:
        try:
            mask |= 1 << _STATE_NUMBERS[name.upper()]
        except KeyError:
            raise ValueError(f"unknown TCP state {name!r} (known: {', '.join(_STATE_NUMBERS)})") from None
    return mask


#: Sockets that carry (or are about to carry, or just carried) a connection's data; no LISTEN,
#: no TIME_WAIT (a kernel mini-socket with no owner: uid 0, inode 0, no tcp_info).
CONNECTED_STATES = state_mask("ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
                              "CLOSE_WAIT", "LAST_ACK", "CLOSING")
ALL_STATES = 0xFFFFFFFF

_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}
_FAMILY_NAMES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
_V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"


# --- results ----------------------------------------------------------------------------------

class NetlinkError(OSError):
    """The kernel answered a sock_diag request with NLMSG_ERROR (or a failed NLMSG_DONE)."""


# --- remote-network filter --------------------------------------------------------------------

class RemoteNetworks:
    """A set of IPv4/IPv6 networks, matched against raw peer addresses before any object is made.

    Matching is one set look-up per distinct prefix length, so thousands of prefixes (the AWS
    ip-ranges S3 list) cost the same as a few. IPv4-mapped IPv6 peers match IPv4 networks.
    """

    def __init__(self, networks: Iterable[Union[str, ipaddress.IPv4Network, ipaddress.IPv6Network]]
                 ) -> None:
        """Index ``networks`` (CIDR strings or network objects) by prefix length."""
        v4: Dict[int, Set[int]] = {}
        v6: Dict[int, Set[int]] = {}
        self.networks: Tuple[Union[ipaddress.IPv4Network, ipaddress.IPv6Network], ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks)
        for net in self.networks:
            table, bits = (v4, 32) if net.version == 4 else (v6, 128)
            table.setdefault(net.prefixlen, set()).add(int(net.network_address) >> (bits - net.prefixlen))
        # (shift, set) pairs, longest prefixes first
        self._v4 = [(32 - p, frozenset(s)) for p, s in sorted(v4.items(), reverse=True)]
        self._v6 = [(128 - p, frozenset(s)) for p, s in sorted(v6.items(), reverse=True)]
        self._bytecode: object = False

    def match_v4_int(self, value: int) -> bool:
        """True when the IPv4 address ``value`` (an integer) is in one of the networks."""
        for shift, nets in self._v4:
            if (value >> shift) in nets:
                return True
        return False

    def match_v6_int(self, value: int) -> bool:
        """True when the IPv6 address ``value`` (an integer) is in one of the networks."""
        for shift, nets in self._v6:
            if (value >> shift) in nets:
                return True
        return False

    def match_raw(self, family: int, addr: bytes) -> bool:
        """``addr``: ``idiag_dst`` as sent (16 bytes; IPv4 in the first four)."""
        if family == socket.AF_INET:
            return self.match_v4_int(int.from_bytes(addr[:4], "big"))
        if addr[:12] == _V4_MAPPED_PREFIX:
            return self.match_v4_int(int.from_bytes(addr[12:16], "big"))
        return self.match_v6_int(int.from_bytes(addr, "big"))

    def bytecode(self) -> Optional[bytes]:
        """An inet_diag filter program accepting a socket whose peer is in one of the networks.

        Semantics (``inet_diag_bc_run`` in net/ipv4/inet_diag.c): each op goes ``yes`` or ``no``
        bytes forward; landing exactly on the end accepts, jumping past it rejects. The audit
        (``inet_diag_bc_audit``) walks the ``yes`` chain and needs every ``no`` target on it, and
        ``yes`` is one byte, so a condition that accepts is followed by a JMP (``no`` is 16
        bits) to the end. Up to :data:`LINEAR_NETWORKS` networks, one condition after the other::

            C1: D_COND net1  yes -> J1   no -> C2
            J1: JMP          (yes -> C2 for the audit)  no -> END (accept)
            ...
            Cn: D_COND netn  yes -> Jn   no -> R
            Jn: JMP          no -> END
            R:  JMP          no -> END + 4 (reject)

        Beyond that the kernel would test every network against every socket (the S3 list of
        ip-ranges.json has hundreds), so the program is a binary trie (:meth:`_tree`) of the
        covering networks (:meth:`kernel_networks`, at most 32 per family): a condition on the
        address family, then conditions on halves of the smallest prefix holding the networks
        left, down to leaves of at most :data:`LEAF_NETWORKS` networks tested as above; a
        socket costs a few conditions, and the parser checks the networks exactly.

        The kernel unwraps IPv4-mapped peers of IPv6 sockets for an AF_INET condition.
        ``None`` when there is nothing to filter on or the program would not fit (64 KiB).
        """
        if self._bytecode is not False:
            return self._bytecode  # type: ignore[return-value]
        if not self.networks:
            self._bytecode = None
            return None
        if len(self.networks) <= LINEAR_NETWORKS:    # as given (the captured request's form)
            ops = self._leaf(list(self.networks), "linear")
        else:
            ops = self._tree()
        self._bytecode = _assemble(ops)
        return self._bytecode

    def kernel_networks(self, version: int) -> List[Any]:
        """The networks of one IP version the kernel filters by: the networks themselves,
        collapsed, or when more than :data:`KERNEL_NETWORKS_PER_FAMILY` remain, covering
        supernets: neighbours are merged into their common supernet, the closest pair first
        (the longest common prefix), until the budget holds. The kernel filter may then let
        through more than the networks (the parser checks every socket exactly again), but its
        cost stays flat: the kernel audits each request's program in time quadratic in its
        length (``valid_cc`` in ``inet_diag_bc_audit`` walks from the start for every jump),
        and runs it for every socket of the host."""
        nets = list(ipaddress.collapse_addresses(n for n in self.networks if n.version == version))
        if len(nets) <= KERNEL_NETWORKS_PER_FAMILY:
            return nets
        bits = 32 if version == 4 else 128
        kind = type(nets[0])
        first = [int(n.network_address) for n in nets]
        last = [int(n.broadcast_address) for n in nets]
        prev = list(range(-1, len(nets) - 1))
        after = list(range(1, len(nets) + 1))
        alive = [True] * len(nets)

        def common(i: int, j: int) -> int:
            return bits - (first[i] ^ last[j]).bit_length()

        heap = [(-common(i, i + 1), i, i + 1) for i in range(len(nets) - 1)]
        heapq.heapify(heap)
        count = len(nets)
        while count > KERNEL_NETWORKS_PER_FAMILY and heap:
            _, i, j = heapq.heappop(heap)
            if not (alive[i] and alive[j] and after[i] == j):
                continue                                  # a stale pair
            length = common(i, j)
            shift = bits - length
            lo = (first[i] >> shift) << shift
            hi = lo | ((1 << shift) - 1)
            first[i], last[i] = lo, hi                    # i becomes the supernet
            alive[j] = False                              # j goes, and neighbours i covers
            count -= 1
            nxt = after[j]
            while nxt < len(nets) and first[nxt] >= lo and last[nxt] <= hi:
                alive[nxt] = False
                count -= 1
                nxt = after[nxt]
            before = prev[i]
            while before >= 0 and first[before] >= lo and last[before] <= hi:
                alive[before] = False
                count -= 1
                before = prev[before]
            after[i], prev[i] = nxt, before
            if nxt < len(nets):
                prev[nxt] = i
                heapq.heappush(heap, (-common(i, nxt), i, nxt))
            if before >= 0:
                after[before] = i
                heapq.heappush(heap, (-common(before, i), before, i))
        out = []
        for i in range(len(nets)):
            if alive[i]:
                size = (last[i] - first[i] + 1).bit_length() - 1
                out.append(kind((first[i], bits - size)))
        return out

    def _leaf(self, nets: List[Union[ipaddress.IPv4Network, ipaddress.IPv6Network]],
              tag: str) -> List[Tuple[Any, ...]]:
        ops: List[Tuple[Any, ...]] = []
        for i, net in enumerate(nets):
            nxt = f"{tag}.{i}"
            ops += [("cond", net, nxt), ("jmp", "ACCEPT"), ("label", nxt)]
        ops.append(("jmp", "REJECT"))
        return ops

    def _tree(self) -> List[Tuple[Any, ...]]:
        counter = itertools.count()

        def gen(nets: List[Any], bits: int) -> List[Tuple[Any, ...]]:
            # ``nets``: collapsed (disjoint) networks of one family, sorted by address.
            if len(nets) <= LEAF_NETWORKS:
                return self._leaf(nets, f"leaf{next(counter)}")
            # The smallest prefix holding them all: the bits the first and last addresses
            # share; split it in halves (both hold some of the networks, as it is the smallest).
            first = int(nets[0].network_address)
            last = int(nets[-1].broadcast_address)
            length = min(bits - (first ^ last).bit_length(), min(n.prefixlen for n in nets))
            half = length + 1
            mid = ((first >> (bits - length)) << (bits - length)) | (1 << (bits - half))
            split = bisect.bisect_left([int(n.network_address) for n in nets], mid)
            left = type(nets[0])((first & ~((1 << (bits - half)) - 1), half))
            label = f"right{next(counter)}"
            return ([("cond", left, label)] + gen(nets[:split], bits) + [("label", label)]
                    + gen(nets[split:], bits))

        v4, v6 = self.kernel_networks(4), self.kernel_networks(6)
        # An AF_INET condition of length 0 matches IPv4 peers, IPv4-mapped ones included.
        return ([("cond", ipaddress.ip_network("0.0.0.0/0"), "v6")] + gen(v4, 32)
                + [("label", "v6")] + gen(v6, 128))

    def __contains__(self, address: object) -> bool:
        """True when ``address`` (a string or address object) is in one of the networks."""
        ip = ipaddress.ip_address(address)  # type: ignore[arg-type]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return self.match_v4_int(int(ip)) if ip.version == 4 else self.match_v6_int(int(ip))


LINEAR_NETWORKS = 8      # up to this many networks the filter tests them one after the other
LEAF_NETWORKS = 4        # networks a leaf of the trie tests one after the other
KERNEL_NETWORKS_PER_FAMILY = 32   # beyond this, the kernel filters by covering supernets


def _assemble(ops: List[Tuple[Any, ...]]) -> Optional[bytes]:
    """The bytecode of ``ops`` (("cond", net, no-label), ("jmp", label), ("label", name);
    ACCEPT is the end, REJECT 4 bytes past it); None past 64 KiB."""
    sizes = []
    conds: List[bytes] = []
    for op in ops:
        if op[0] == "cond":
            net = op[1]
            family = socket.AF_INET if net.version == 4 else socket.AF_INET6
            conds.append(_HOSTCOND.pack(family, net.prefixlen, -1) + net.network_address.packed)
            sizes.append(4 + len(conds[-1]))
        else:
            conds.append(b"")
            sizes.append(4 if op[0] == "jmp" else 0)
    offsets = list(itertools.accumulate([0] + sizes))
    total = offsets[-1]
    if total + 8 > 0xFFFF:
        return None
    labels = {op[1]: offsets[i] for i, op in enumerate(ops) if op[0] == "label"}
    labels.update(ACCEPT=total, REJECT=total + 4)
    out = bytearray()
    for i, op in enumerate(ops):
        if op[0] == "cond":
            out += _BC_OP.pack(INET_DIAG_BC_D_COND, sizes[i], labels[op[2]] - offsets[i]) + conds[i]
        elif op[0] == "jmp":
            out += _BC_OP.pack(INET_DIAG_BC_JMP, 4, labels[op[1]] - offsets[i])
    return bytes(out)


# --- sock_diag: request and parser ------------------------------------------------------------

def _bytecode_attr(bytecode: Optional[bytes]) -> bytes:
    if not bytecode:
        return b""
    attr = _NLATTR.pack(4 + len(bytecode), INET_DIAG_REQ_BYTECODE) + bytecode
    return attr + b"\0" * (-len(attr) % 4)


def build_request(family: int, states: int = CONNECTED_STATES, seq: int = 1,
                  with_info: bool = True, bytecode: Optional[bytes] = None) -> bytes:
    """One SOCK_DIAG_BY_FAMILY dump request: ``nlmsghdr`` + ``inet_diag_req_v2`` (72 bytes),
    plus an ``INET_DIAG_REQ_BYTECODE`` attribute when ``bytecode`` is given."""
    ext = (1 << (INET_DIAG_INFO - 1)) if with_info else 0
    body = _INET_DIAG_REQ_V2.pack(family, socket.IPPROTO_TCP, ext, 0, states & 0xFFFFFFFF,
                                  b"", b"", 0, 0xFFFFFFFF, 0xFFFFFFFF)  # cookie INET_DIAG_NOCOOKIE
    body += _bytecode_attr(bytecode)
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                            NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


def build_request_both(states: int = CONNECTED_STATES, seq: int = 1, with_info: bool = True,
                       bytecode: Optional[bytes] = None) -> bytes:
    """A TCPDIAG_GETSOCK dump request (``struct inet_diag_req``, 60 bytes): the kernel dumps IPv4
    and IPv6 sockets in one walk of the TCP hash tables (``inet_diag_dump_compat`` sets
    ``sdiag_family = AF_UNSPEC``), half the fixed cost of two SOCK_DIAG_BY_FAMILY dumps."""
    ext = (1 << (INET_DIAG_INFO - 1)) if with_info else 0
    body = _INET_DIAG_REQ_COMPAT.pack(socket.AF_INET, 0, 0, ext, states & 0xFFFFFFFF, 0)
    body += _bytecode_attr(bytecode)
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), TCPDIAG_GETSOCK,
                            NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


def _inet_ntop(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def _parse_into(buf: Union[bytes, bytearray, memoryview], end: int, out: List[TcpSocket],
                networks: Optional[RemoteNetworks], flags_seen: List[int]) -> bool:
    """Parse whole netlink messages in ``buf[:end]`` into ``out``; True once NLMSG_DONE is seen."""
    offset = 0
    unpack_hdr = _NLMSGHDR.unpack_from
    unpack_msg = _INET_DIAG_MSG.unpack_from
    unpack_rta = _RTATTR.unpack_from
    unpack_ports = _PORTS.unpack
    ntop = socket.inet_ntop
    af_inet = socket.AF_INET
    match = networks.match_raw if networks is not None else None
    states = TCP_STATES
    while offset + 16 <= end:
        length, mtype, mflags, _seq, _pid = unpack_hdr(buf, offset)
        if length < 16 or offset + length > end:
            raise ValueError(f"truncated netlink message at offset {offset} (nlmsg_len {length}, "
                             f"{end - offset} bytes left)")
        if mflags & NLM_F_DUMP_INTR:
            flags_seen[0] |= NLM_F_DUMP_INTR
        if mtype == SOCK_DIAG_BY_FAMILY or mtype == TCPDIAG_GETSOCK:
            if length < 16 + _INET_DIAG_MSG_LEN:
                raise ValueError(f"short inet_diag_msg at offset {offset} (nlmsg_len {length})")
            family, state, sport, dport, src, dst, uid, inode = unpack_msg(buf, offset + 16)
            if match is None or match(family, dst):
                acked = received = sent = retrans = cgroup = None
                pos = offset + 16 + _INET_DIAG_MSG_LEN
                stop = offset + length
                while pos + 4 <= stop:
                    alen, atype = unpack_rta(buf, pos)
                    if alen < 4:
                        break
                    if atype == INET_DIAG_INFO:
                        size = alen - 4
                        base = pos + 4
                        if size >= TCPI_BYTES_RECEIVED + 8:
                            acked, received = _U64X2.unpack_from(buf, base + TCPI_BYTES_ACKED)
                        if size >= TCPI_BYTES_RETRANS + 8:
                            sent, retrans = _U64X2.unpack_from(buf, base + TCPI_BYTES_SENT)
                    elif atype == INET_DIAG_CGROUP_ID and alen >= 12:
                        (cgroup,) = _U64.unpack_from(buf, pos + 4)
                    pos += (alen + 3) & ~3
                lport, rport = unpack_ports(sport + dport)
                if family == af_inet:
                    lip = ntop(af_inet, src[:4])
                    rip = ntop(af_inet, dst[:4])
                    fam = "ipv4"
                else:
                    lip = ntop(family, src)
                    rip = ntop(family, dst)
                    fam = "ipv6"
                out.append(TcpSocket(fam, states.get(state, str(state)), lip, lport, rip, rport,
                                     uid, inode, acked, received, sent, retrans, "sock_diag", cgroup))
        elif mtype == NLMSG_DONE:
            if length >= 20:
                (code,) = _NLMSGERR.unpack_from(buf, offset + 16)
                if code < 0:
                    raise NetlinkError(-code, f"sock_diag dump ended with {errno.errorcode.get(-code, -code)}: "
                                              f"{os.strerror(-code)}")
            return True
        elif mtype == NLMSG_ERROR:
            (code,) = _NLMSGERR.unpack_from(buf, offset + 16)
            if code < 0:
                raise NetlinkError(-code, f"sock_diag request refused with {errno.errorcode.get(-code, -code)}: "
                                          f"{os.strerror(-code)}")
            # error 0 is an ACK
        offset += (length + 3) & ~3
    return False


def parse_sock_diag(messages: Union[bytes, bytearray, memoryview],
                    networks: Optional[RemoteNetworks] = None) -> List[TcpSocket]:
    """Parse a SOCK_DIAG_BY_FAMILY or TCPDIAG_GETSOCK dump reply (datagrams, concatenated).

    Stops at NLMSG_DONE; raises :class:`NetlinkError` for an NLMSG_ERROR with a non-zero code
    and ``ValueError`` for a malformed buffer. With ``networks``, only sockets whose peer is in
    one of them are returned (the test runs on the raw address, before any object is built).
    """
    out: List[TcpSocket] = []
    _parse_into(messages, len(messages), out, networks, [0])
    return out


# --- /proc/net/tcp parser ---------------------------------------------------------------------

def _proc_addr_v4(hex_addr: str) -> bytes:
    # tcp4_seq_show prints the __be32 with "%08X" as the host reads it: on a little-endian host
    # 127.0.0.1 (bytes 7f 00 00 01) is "0100007F". Re-pack in native order to get the bytes.
    return struct.pack("=I", int(hex_addr, 16))


def _proc_addr_v6(hex_addr: str) -> bytes:
    # tcp6_seq_show prints in6_addr.s6_addr32[0..3], each with "%08X" in host order.
    return struct.pack("=IIII", int(hex_addr[0:8], 16), int(hex_addr[8:16], 16),
                       int(hex_addr[16:24], 16), int(hex_addr[24:32], 16))


def parse_proc_net_tcp(text: str, family: Union[int, str], states: int = ALL_STATES,
                       networks: Optional[RemoteNetworks] = None) -> List[TcpSocket]:
    """Parse /proc/net/tcp (``family`` 4 / 'ipv4') or /proc/net/tcp6 (6 / 'ipv6') text.

    Columns (proc(5)): ``sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt
    uid timeout inode ...``; addresses are hex in host byte order per 32-bit word, ports hex.
    ``states`` filters by the ``st`` column (a :func:`state_mask`), which the kernel cannot do here.
    """
    fam = _family_number(family)
    af = _FAMILIES[fam]
    name = _FAMILY_NAMES[af]
    to_bytes = _proc_addr_v4 if fam == 4 else _proc_addr_v6
    match = networks.match_raw if networks is not None else None
    out: List[TcpSocket] = []
    lines = text.splitlines()
    for line in lines[1:] if lines and lines[0].lstrip().startswith("sl") else lines:
        fields = line.split()
        if len(fields) < 10:
            continue
        st = int(fields[3], 16)
        if not (states >> st) & 1:
            continue
        remote_hex, rport_hex = fields[2].split(":")
        raddr = to_bytes(remote_hex)
        if match is not None and not match(af, raddr):
            continue
        local_hex, lport_hex = fields[1].split(":")
        out.append(TcpSocket(
            name, TCP_STATES.get(st, str(st)), socket.inet_ntop(af, to_bytes(local_hex)),
            int(lport_hex, 16), socket.inet_ntop(af, raddr), int(rport_hex, 16),
            int(fields[7]), int(fields[9]), None, None, None, None, "proc"))
    return out


def _family_number(family: Union[int, str]) -> int:
    if family in (4, "4", "ipv4", socket.AF_INET):
        return 4
    if family in (6, "6", "ipv6", socket.AF_INET6):
        return 6
    raise ValueError(f"unknown family {family!r} (4 or 6)")


# --- live dump --------------------------------------------------------------------------------

_RECV_SIZE = 65536  # the kernel's dump skbs are at most ~32 KiB (netlink_recvmsg caps max_recvmsg_len)


def open_sock_diag(timeout: float = 2.0) -> socket.socket:
    """A ``NETLINK_SOCK_DIAG`` socket in the calling thread's network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    sock.settimeout(timeout)
    return sock


def _recv_dump(sock: socket.socket, buf: bytearray, out: List[TcpSocket],
               networks: Optional[RemoteNetworks], keep: Optional[List[bytes]] = None) -> bool:
    """Receive one dump's datagrams into ``out``; True if the kernel flagged NLM_F_DUMP_INTR."""
    flags_seen = [0]
    size = len(buf)
    while True:
        n = sock.recv_into(buf, size, socket.MSG_TRUNC)
        if n > size:
            raise ValueError(f"netlink datagram of {n} bytes truncated to {size}")
        if keep is not None:
            keep.append(bytes(buf[:n]))
        if _parse_into(buf, n, out, networks, flags_seen):
            return bool(flags_seen[0] & NLM_F_DUMP_INTR)


def netlink_dump_raw(request: bytes, timeout: float = 2.0) -> List[bytes]:
    """Send one dump request (:func:`build_request`, :func:`build_request_both`) and return the
    reply datagrams as the kernel sent them (for fixtures)."""
    with open_sock_diag(timeout) as sock:
        sock.sendto(request, (0, 0))
        datagrams: List[bytes] = []
        _recv_dump(sock, bytearray(_RECV_SIZE), [], None, datagrams)
        return datagrams


def errno_text(exc: BaseException) -> str:
    """``EACCES: Permission denied`` for an OSError, else the exception's type and text."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror or os.strerror(exc.errno)}"
    return f"{type(exc).__name__}: {exc}"


def _read_proc_file(path: str) -> str:
    # one read(2) of up to 1 MiB at a time: each read of /proc/net/tcp resumes a walk of the
    # kernel's TCP hash table, so fewer, larger reads cost less
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


class _SocketRefused(OSError):
    """socket(AF_NETLINK) itself was refused: it will not work next cycle either."""


class TcpDumper:
    """Keeps one sock_diag socket and one receive buffer for repeated dumps (a cycle each).

    With both families wanted it sends one TCPDIAG_GETSOCK request (one walk of the kernel's
    TCP hash for IPv4 and IPv6), else, or if the kernel refuses that, one SOCK_DIAG_BY_FAMILY
    request per family. With ``networks`` the kernel filters by peer address (an inet_diag
    bytecode program) and the parser checks again; either way only matching sockets come back.
    """

    def __init__(self, proc_net: str = "/proc/net", timeout: float = 2.0,
                 single_walk: bool = True, kernel_filter: bool = True,
                 netlink_factory: Callable[[float], socket.socket] = open_sock_diag) -> None:
        """Dump through sockets from ``netlink_factory(timeout)`` (default: a sock_diag socket
        in this thread's network namespace); fall back to ``proc_net``'s tcp and tcp6 files."""
        self.proc_net = proc_net
        self.timeout = timeout
        self.netlink_factory = netlink_factory
        self.single_walk = single_walk
        self.kernel_filter = kernel_filter
        self._sock: Optional[socket.socket] = None
        self._buf = bytearray(_RECV_SIZE)
        self._seq = 0
        self._netlink_broken: Optional[str] = None
        self.notes: List[str] = []   # degradations that lose no data (compat or bytecode refused)
        self.last_source = "none"    # what the last dump read: sock_diag, proc, mixed or none

    def close(self) -> None:
        """Close the netlink socket (the next dump opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "TcpDumper":
        """The dumper itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the netlink socket."""
        self.close()

    def _request(self, request: bytes, networks: Optional[RemoteNetworks]) -> Tuple[List[TcpSocket], bool]:
        if self._sock is None:
            try:
                self._sock = self.netlink_factory(self.timeout)
            except OSError as exc:
                raise _SocketRefused(exc.errno, exc.strerror) from exc
        self._sock.sendto(request, (0, 0))
        out: List[TcpSocket] = []
        try:
            interrupted = _recv_dump(self._sock, self._buf, out, networks)
        except NetlinkError:
            raise
        except (OSError, ValueError):
            self.close()   # a half-read dump must not leak into the next request
            raise
        return out, interrupted

    def _bytecode(self, networks: Optional[RemoteNetworks]) -> Optional[bytes]:
        if networks is None or not self.kernel_filter:
            return None
        return networks.bytecode()

    def dump(self, states: int = CONNECTED_STATES, families: Sequence[int] = (4, 6),
             networks: Optional[RemoteNetworks] = None,
             use_netlink: bool = True) -> Tuple[List[TcpSocket], List[str]]:
        """All TCP sockets in ``states`` of ``families`` (whose peer is in ``networks``, if given);
        problems say what could not be observed, or observed less well, and why."""
        fams = []
        for fam in families:
            if _family_number(fam) not in fams:
                fams.append(_family_number(fam))
        sockets: List[TcpSocket] = []
        problems: List[str] = []
        reason = None if use_netlink else "netlink not used (use_netlink=False)"
        if reason is None and self._netlink_broken is not None:
            reason = self._netlink_broken
        bytecode = self._bytecode(networks)

        if reason is None and self.single_walk and len(fams) == 2:
            try:
                self._seq += 1
                found, interrupted = self._request(build_request_both(states, self._seq, True, bytecode), networks)
                if interrupted:
                    problems.append("sock_diag dump was interrupted (NLM_F_DUMP_INTR): sockets changed "
                                    "during the dump; some may be missing")
                self.last_source = "sock_diag"
                return found, problems
            except NetlinkError as exc:
                if bytecode is not None and exc.errno == errno.EINVAL:
                    self.kernel_filter = False
                    self.notes.append(f"kernel refused the bytecode filter ({errno_text(exc)}); filtering in userland")
                    bytecode = None
                else:
                    self.single_walk = False
                    self.notes.append(f"kernel refused TCPDIAG_GETSOCK ({errno_text(exc)}); one dump per family")
                return self.dump(states, families, networks, use_netlink)
            except (OSError, ValueError) as exc:
                reason = self._netlink_failed(exc)

        used: Set[str] = set()
        for fam in fams:
            af = _FAMILIES[fam]
            fam_reason = reason
            if fam_reason is None:
                try:
                    self._seq += 1
                    try:
                        found, interrupted = self._request(build_request(af, states, self._seq, True, bytecode), networks)
                    except NetlinkError as exc:
                        if bytecode is None or exc.errno != errno.EINVAL:
                            raise
                        self.kernel_filter = False
                        self.notes.append(f"kernel refused the bytecode filter ({errno_text(exc)}); filtering in userland")
                        bytecode = None
                        self._seq += 1
                        found, interrupted = self._request(build_request(af, states, self._seq), networks)
                    if interrupted:
                        problems.append(f"IPv{fam} sock_diag dump was interrupted (NLM_F_DUMP_INTR): "
                                        "sockets changed during the dump; some may be missing")
                    sockets.extend(found)
                    used.add("sock_diag")
                    continue
                except NetlinkError as exc:
                    fam_reason = f"sock_diag refused IPv{fam} ({errno_text(exc)})"
                    if exc.errno == errno.ENOENT:
                        fam_reason += "; the kernel has no inet_diag/tcp_diag for this family (module not loaded?)"
                except (OSError, ValueError) as exc:
                    reason = fam_reason = self._netlink_failed(exc)
            path = os.path.join(self.proc_net, "tcp" if fam == 4 else "tcp6")
            try:
                text = _read_proc_file(path)
            except OSError as exc:
                problems.append(f"{fam_reason}; fallback {path} unreadable ({errno_text(exc)}): "
                                f"IPv{fam} sockets not observed"
                                + ("; IPv6 disabled on this host?" if fam == 6 and exc.errno == errno.ENOENT else ""))
                continue
            try:
                sockets.extend(parse_proc_net_tcp(text, fam, states, networks))
            except ValueError as exc:
                problems.append(f"{fam_reason}; fallback {path} unreadable (malformed: {exc}): "
                                f"IPv{fam} sockets not observed")
                continue
            used.add("proc")
            problems.append(f"{fam_reason}; IPv{fam} sockets read from {path} instead (no byte counters)")
        self.last_source = used.pop() if len(used) == 1 else ("mixed" if used else "none")
        return sockets, problems

    def _netlink_failed(self, exc: BaseException) -> str:
        if isinstance(exc, _SocketRefused):
            # socket(AF_NETLINK) itself refused (EPERM/EACCES from seccomp or an LSM,
            # EAFNOSUPPORT from RestrictAddressFamilies=): it will not work next cycle either
            self._netlink_broken = f"netlink sock_diag unavailable ({errno_text(exc)})"
            return self._netlink_broken
        return f"netlink sock_diag failed this cycle ({errno_text(exc)})"


def dump_tcp_sockets(states: int = CONNECTED_STATES, families: Sequence[int] = (4, 6),
                     networks: Optional[RemoteNetworks] = None,
                     use_netlink: bool = True) -> Tuple[List[TcpSocket], List[str]]:
    """One-shot :meth:`TcpDumper.dump` (netlink sock_diag, falling back to /proc/net/tcp{,6})."""
    with TcpDumper() as dumper:
        return dumper.dump(states, families, networks, use_netlink)


