"""The sock_diag and /proc/net/tcp{,6} parsers on real kernel output we captured ourselves
(fixtures/sock_diag/, written by capture_sock_diag.py in a private network namespace: loopback
sockets of one process with known byte counts; capture.json says what was made), the kernel
filter program, and live dumps of this test's own loopback connections."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import struct
import sys
from pathlib import Path

import pytest

from s3_route_agent.collectors import sock_diag as sk
from s3_route_agent.collectors.processes import map_inodes_to_processes

FIX = Path(__file__).resolve().parent / "fixtures" / "sock_diag"


def _load_hex(name: str) -> list:
    return [bytes.fromhex(line) for line in (FIX / name).read_text().split()]


def _dump(name: str) -> bytes:
    return b"".join(_load_hex(name))


def _text(name: str) -> str:
    return (FIX / name).read_text()


META = json.loads(_text("capture.json"))
MADE = {s["name"]: s for s in META["sockets"]}


def _key(s):
    return (s.family, s.local_ip, s.local_port, s.remote_ip, s.remote_port)


def _index(sockets):
    out = {}
    for s in sockets:
        assert _key(s) not in out, f"duplicate {s}"
        out[_key(s)] = s
    return out


def _find(index, made):
    key = (made["family"], made["local_ip"], made["local_port"],
           made.get("remote_ip", "0.0.0.0" if made["family"] == "ipv4" else "::"),
           made.get("remote_port", 0))
    assert key in index, f"{made['name']} {key} not in {sorted(index)}"
    return index[key]


PROC_FOR_CGROUP = None  # set below, after the /proc fixtures are parsed
ALL = _index(sk.parse_sock_diag(_dump("sock_diag_ipv4_all.hex"))
             + sk.parse_sock_diag(_dump("sock_diag_ipv6_all.hex")))


# --- sock_diag parser on real kernel replies ------------------------------------------------

def test_fixture_holds_exactly_the_sockets_made():
    assert len(ALL) == len(MADE)
    for made in MADE.values():
        _find(ALL, made)


@pytest.mark.parametrize("name", sorted(MADE))
def test_sock_diag_fields(name):
    made = MADE[name]
    s = _find(ALL, made)
    assert s.source == "sock_diag"
    assert s.family == made["family"]
    assert s.state == made["state"]
    assert s.uid == made["uid"]
    assert s.inode == made["inode"]
    if made["state"] == "TIME_WAIT":
        # a timewait mini-socket: no owner, no inode, no tcp_info
        assert (s.inode, s.uid, s.bytes_sent, s.bytes_received) == (0, 0, None, None)
    elif made["state"] == "LISTEN":
        assert (s.bytes_sent, s.bytes_received) == (0, 0)
    else:
        sent, received = made["app_bytes_sent"], made["app_bytes_received"]
        # tcpi_bytes_acked counts sequence space: + 1 for an active opener's SYN, + 1 for a FIN
        assert sent <= s.bytes_sent <= sent + 2
        # tcpi_bytes_received: payload, + 1 once the peer's FIN is in
        assert received <= s.bytes_received <= received + 1
        # tcpi_bytes_sent (4.19+): payload put on the wire; loopback has no retransmissions
        assert s.bytes_sent_wire == sent
        assert s.bytes_retrans == 0


def test_sock_diag_exact_counters_of_the_plain_pairs():
    c, srv = _find(ALL, MADE["v4_client"]), _find(ALL, MADE["v4_server"])
    assert (c.bytes_sent, c.bytes_received) == (3000 + 1, 1234)   # + the SYN
    assert (srv.bytes_sent, srv.bytes_received) == (1234, 3000)
    c6 = _find(ALL, MADE["v6_client"])
    assert (c6.bytes_sent_wire, c6.bytes_received) == (5000, 777)


def test_sock_diag_ports_and_peers_pair_up():
    c, srv = _find(ALL, MADE["v4_client"]), _find(ALL, MADE["v4_server"])
    assert (c.local_ip, c.local_port) == (srv.remote_ip, srv.remote_port)
    assert (c.remote_ip, c.remote_port) == (srv.local_ip, srv.local_port)
    assert c.remote_port == MADE["listen_v4"]["local_port"]


def test_ipv4_mapped_sockets_are_ipv6_family_and_unwrap():
    s = _find(ALL, MADE["mapped_client"])
    assert s.family == "ipv6"
    assert s.remote_ip == "::ffff:127.0.0.1"
    assert s.remote_address == "127.0.0.1"
    v6 = _find(ALL, MADE["v6_client"])
    assert v6.remote_address == "::1"


def test_cgroup_id_attribute():
    s = _find(ALL, MADE["v4_client"])
    assert isinstance(s.cgroup_id, int) and s.cgroup_id > 0
    assert _find(PROC_FOR_CGROUP, MADE["v4_client"]).cgroup_id is None


def test_other_uid_is_reported():
    assert _find(ALL, MADE["v4_client_nobody"]).uid == 65534
    assert _find(ALL, MADE["v4_server_of_nobody"]).uid == 0


def test_kernel_state_filter():
    connected = _index(sk.parse_sock_diag(_dump("sock_diag_ipv4_connected.hex"))
                       + sk.parse_sock_diag(_dump("sock_diag_ipv6_connected.hex")))
    expected = {_key(s) for s in ALL.values() if s.state not in ("LISTEN", "TIME_WAIT")}
    assert set(connected) == expected
    assert {s.state for s in connected.values()} == {"ESTABLISHED", "FIN_WAIT2", "CLOSE_WAIT"}


def test_datagrams_parse_alone_and_concatenated():
    datagrams = _load_hex("sock_diag_ipv4_all.hex")
    assert len(datagrams) >= 2  # the sockets, then NLMSG_DONE
    one_by_one = []
    for d in datagrams:
        one_by_one += sk.parse_sock_diag(d)
    assert one_by_one == sk.parse_sock_diag(b"".join(datagrams))
    assert sk.parse_sock_diag(datagrams[-1]) == []   # this kernel sends NLMSG_DONE on its own


def test_parsing_stops_at_done():
    data = _dump("sock_diag_ipv4_all.hex")
    assert sk.parse_sock_diag(data + b"\xff" * 40) == sk.parse_sock_diag(data)


def test_single_walk_dump_has_both_families():
    both = _index(sk.parse_sock_diag(_dump("sock_diag_both_all.hex")))
    assert set(both) == set(ALL)
    for key, s in both.items():
        assert s == ALL[key]


def test_kernel_bytecode_filter_reply():
    got = sk.parse_sock_diag(_dump("sock_diag_both_filtered.hex"))
    assert [(s.inode, s.remote_ip, s.bytes_sent_wire, s.bytes_received) for s in got] == [
        (MADE["s3_client"]["inode"], "127.0.0.2", 2048, 4096)]


def test_request_builder_matches_what_the_kernel_accepted():
    sent = _load_hex("request_both_filtered.hex")[0]
    nets = sk.RemoteNetworks(["127.0.0.2/32", "2001:db8::/32"])
    assert sk.build_request_both(sk.CONNECTED_STATES, 1, True, nets.bytecode()) == sent
    length, mtype = struct.unpack_from("=IH", sent)
    assert (length, mtype) == (len(sent), sk.TCPDIAG_GETSOCK)


def _run_bytecode(program: bytes, family: int, addr: bytes, trace: list | None = None) -> bool:
    """A Python model of inet_diag_bc_run for D_COND/JMP, to check the program's jumps
    (``trace`` collects the offset of every op run)."""
    pos, length = 0, len(program)
    while length > 0:
        if trace is not None:
            trace.append(pos)
        code, yes, no = struct.unpack_from("=BBH", program, pos)
        ok = True
        if code == sk.INET_DIAG_BC_JMP:
            ok = False
        elif code == sk.INET_DIAG_BC_D_COND:
            cfam, plen, port = struct.unpack_from("=BB2xi", program, pos + 4)
            caddr = program[pos + 12:pos + 12 + (4 if cfam == socket.AF_INET else 16)]
            a = addr
            if cfam != family:
                if family == socket.AF_INET6 and cfam == socket.AF_INET and addr[:12] == b"\0" * 10 + b"\xff\xff":
                    a = addr[12:]
                else:
                    ok = False
            if ok and plen:
                bits = len(caddr) * 8
                ok = int.from_bytes(a[:len(caddr)], "big") >> (bits - plen) == int.from_bytes(caddr, "big") >> (bits - plen)
        step = yes if ok else no
        pos += step
        length -= step
    return length == 0


def test_bytecode_program_semantics():
    nets = sk.RemoteNetworks(["52.92.0.0/17", "3.5.0.0/19", "2600:1fa0::/32", "0.0.0.0/32"])
    prog = nets.bytecode()
    v4 = lambda a: socket.inet_aton(a) + bytes(12)
    v6 = lambda a: socket.inet_pton(socket.AF_INET6, a)
    assert _run_bytecode(prog, socket.AF_INET, v4("52.92.77.1"))
    assert _run_bytecode(prog, socket.AF_INET, v4("3.5.31.255"))
    assert not _run_bytecode(prog, socket.AF_INET, v4("3.5.32.0"))
    assert _run_bytecode(prog, socket.AF_INET6, v6("::ffff:52.92.0.9"))
    assert _run_bytecode(prog, socket.AF_INET6, v6("2600:1fa0:8::1"))
    assert not _run_bytecode(prog, socket.AF_INET6, v6("2600:1fa1::1"))
    assert not _run_bytecode(prog, socket.AF_INET6, v6("::1"))
    # every yes-jump is at least the op and at most 255; the audit's rules hold
    pos = 0
    while pos < len(prog):
        code, yes, no = struct.unpack_from("=BBH", prog, pos)
        assert 4 <= yes <= 255 and yes % 4 == 0 and no % 4 == 0 and pos + no <= len(prog) + 4
        pos += yes
    assert pos == len(prog)


def test_bytecode_empty_and_bounded():
    assert sk.RemoteNetworks([]).bytecode() is None
    # 4,000 networks, none adjacent: the kernel filters by at most 32 covering supernets (the
    # parser checks exactly), so the program stays small and the kernel's audit cheap
    many = sk.RemoteNetworks([f"10.{i // 128}.{2 * (i % 128)}.0/24" for i in range(4000)])
    cover = many.kernel_networks(4)
    assert len(cover) <= sk.KERNEL_NETWORKS_PER_FAMILY and len(many.bytecode()) < 2000
    assert all(any(n.subnet_of(c) for c in cover) for n in many.networks)
    assert "10.3.4.5" in many and "10.3.5.5" not in many      # the exact filter
    # the closest neighbours merge first: a lone address far from the clusters stays exact
    spread = sk.RemoteNetworks([f"{o}.{i}.{j}.0/24" for o in (3, 52, 54) for i in range(0, 40, 2)
                                for j in range(0, 20, 2)] + ["127.0.0.2/32"])
    assert ipaddress.ip_network("127.0.0.2/32") in spread.kernel_networks(4)
    assert "127.0.0.1" not in sk.RemoteNetworks(spread.kernel_networks(4))
    # adjacent ones collapse into a few conditions
    assert len(sk.RemoteNetworks([f"10.{i // 256}.{i % 256}.0/24"
                                  for i in range(4000)]).bytecode()) < 200


def test_nlmsg_error_reply():
    with pytest.raises(sk.NetlinkError) as exc:
        sk.parse_sock_diag(_dump("sock_diag_error_einval.hex"))
    assert exc.value.errno == errno.EINVAL


def test_nlmsg_done_with_error():
    with pytest.raises(sk.NetlinkError) as exc:
        sk.parse_sock_diag(_dump("sock_diag_done_enoent.hex"))
    assert exc.value.errno == errno.ENOENT


def test_truncated_buffer_is_an_error():
    data = _load_hex("sock_diag_ipv4_all.hex")[0]
    with pytest.raises(ValueError):
        sk.parse_sock_diag(data[:-10])


def _with_tcp_info_len(datagram: bytes, new_len: int) -> bytes:
    """Rewrite a real reply as an older kernel would send it: tcp_info cut to ``new_len`` bytes."""
    out = bytearray()
    off = 0
    while off + 16 <= len(datagram):
        length, mtype, flags, seq, pid = struct.unpack_from("=IHHII", datagram, off)
        msg = datagram[off:off + length]
        if mtype == sk.SOCK_DIAG_BY_FAMILY:
            body = bytearray(msg[16:16 + 72])
            pos = 16 + 72
            while pos + 4 <= length:
                alen, atype = struct.unpack_from("=HH", msg, pos)
                payload = msg[pos + 4:pos + alen]
                if atype == sk.INET_DIAG_INFO:
                    payload = payload[:new_len]
                attr = struct.pack("=HH", 4 + len(payload), atype) + payload
                body += attr + b"\0" * (-len(attr) % 4)
                pos += (alen + 3) & ~3
            msg = struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, pid) + bytes(body)
        out += msg
        off += (length + 3) & ~3
    return bytes(out)


@pytest.mark.parametrize("length,has_acked,has_wire", [
    (104, False, False),   # up to tcpi_total_retrans: Linux < 3.15
    (120, False, False),   # + pacing rates (3.15)
    (136, True, False),    # + bytes_acked, bytes_received (4.1)
    (200, True, False),    # + ... delivered, delivered_ce (4.18)
    (216, True, True),     # + bytes_sent, bytes_retrans (4.19)
    (280, True, True),     # this kernel (6.18)
])
def test_shorter_tcp_info_from_older_kernels(length, has_acked, has_wire):
    data = b"".join(_with_tcp_info_len(d, length) for d in _load_hex("sock_diag_ipv4_all.hex"))
    by_key = _index(sk.parse_sock_diag(data))
    s = _find(by_key, MADE["v4_client"])
    assert (s.bytes_sent, s.bytes_received) == ((3001, 1234) if has_acked else (None, None))
    assert (s.bytes_sent_wire, s.bytes_retrans) == ((3000, 0) if has_wire else (None, None))
    assert (s.uid, s.inode) == (0, MADE["v4_client"]["inode"])


def test_fixture_tcp_info_length_recorded():
    assert META["tcp_info_len"] >= sk.TCPI_BYTES_RETRANS + 8


def test_remote_network_filter_on_raw_addresses():
    data = _dump("sock_diag_ipv6_all.hex")
    nets = sk.RemoteNetworks(["127.0.0.0/8"])
    got = sk.parse_sock_diag(data, nets)
    # only the IPv4-mapped pair in the IPv6 dump has an IPv4 peer
    assert {s.inode for s in got} == {MADE["mapped_client"]["inode"], MADE["mapped_server"]["inode"]}
    got = sk.parse_sock_diag(data, sk.RemoteNetworks(["::1/128"]))
    assert {s.inode for s in got} == {MADE["v6_client"]["inode"], MADE["v6_server"]["inode"]}
    assert sk.parse_sock_diag(data, sk.RemoteNetworks(["10.0.0.0/8", "2001:db8::/32"])) == []


def test_remote_networks_membership():
    nets = sk.RemoteNetworks(["52.92.0.0/17", "3.5.0.0/19", "2600:1fa0::/32", "16.12.32.0/22"])
    assert "52.92.1.2" in nets and "::ffff:52.92.1.2" in nets and "3.5.31.255" in nets
    assert "52.93.0.1" not in nets and "2600:1fa0:1::5" in nets and "2600:1fa1::1" not in nets
    assert "16.12.35.1" in nets and "16.12.36.1" not in nets


# --- /proc/net/tcp parser on real kernel text ------------------------------------------------

PROC = _index(sk.parse_proc_net_tcp(_text("proc_net_tcp.txt"), 4)
              + sk.parse_proc_net_tcp(_text("proc_net_tcp6.txt"), "ipv6"))
PROC_FOR_CGROUP = PROC

needs_capture_byteorder = pytest.mark.skipif(
    sys.byteorder != META["byteorder"], reason="/proc/net/tcp hex is in the capturing host's byte order")


@needs_capture_byteorder
@pytest.mark.parametrize("name", sorted(MADE))
def test_proc_fields(name):
    made = MADE[name]
    s = _find(PROC, made)
    assert s.source == "proc"
    assert (s.family, s.state, s.uid, s.inode) == (made["family"], made["state"], made["uid"], made["inode"])
    assert (s.bytes_sent, s.bytes_received, s.bytes_sent_wire) == (None, None, None)


@needs_capture_byteorder
def test_proc_and_sock_diag_agree():
    def strip(s):
        return (s.family, s.state, s.local_ip, s.local_port, s.remote_ip, s.remote_port, s.uid, s.inode)
    assert sorted(map(strip, PROC.values())) == sorted(map(strip, ALL.values()))


@needs_capture_byteorder
def test_proc_byte_order_of_addresses():
    s = _find(PROC, MADE["v4_client"])
    assert s.local_ip == "127.0.0.1" and s.remote_ip == "127.0.0.1"   # "0100007F" in the text
    m = _find(PROC, MADE["mapped_client"])
    assert m.remote_ip == "::ffff:127.0.0.1"      # "0000000000000000FFFF00000100007F"
    assert _find(PROC, MADE["v6_client"]).remote_ip == "::1"   # "...00000001000000"


@needs_capture_byteorder
def test_proc_state_and_network_filters():
    text = _text("proc_net_tcp.txt")
    got = sk.parse_proc_net_tcp(text, 4, sk.state_mask("TIME_WAIT", "LISTEN"))
    assert sorted(s.state for s in got) == ["LISTEN", "LISTEN", "TIME_WAIT"]   # 127.0.0.1, 127.0.0.2
    assert sk.parse_proc_net_tcp(text, 4, networks=sk.RemoteNetworks(["10.0.0.0/8"])) == []
    mapped = sk.parse_proc_net_tcp(_text("proc_net_tcp6.txt"), 6, sk.CONNECTED_STATES,
                                   sk.RemoteNetworks(["127.0.0.0/8"]))
    assert {s.inode for s in mapped} == {MADE["mapped_client"]["inode"], MADE["mapped_server"]["inode"]}


def test_proc_parser_without_header_and_blank_lines():
    line = _text("proc_net_tcp.txt").splitlines()[1]
    assert len(sk.parse_proc_net_tcp(line + "\n\n", 4)) == 1


def test_state_mask():
    assert sk.state_mask("ESTABLISHED") == 1 << 1
    assert sk.CONNECTED_STATES & sk.state_mask("LISTEN", "TIME_WAIT") == 0
    with pytest.raises(ValueError):
        sk.state_mask("NOPE")


def test_request_layout():
    req = sk.build_request(socket.AF_INET6, sk.state_mask("ESTABLISHED"), seq=9)
    assert len(req) == 16 + 56
    length, mtype, flags, seq, _ = struct.unpack_from("=IHHII", req)
    assert (length, mtype, flags, seq) == (72, 20, sk.NLM_F_REQUEST | sk.NLM_F_DUMP, 9)
    family, proto, ext, _, states = struct.unpack_from("=BBBBI", req, 16)
    assert (family, proto, ext, states) == (socket.AF_INET6, socket.IPPROTO_TCP, 1 << (sk.INET_DIAG_INFO - 1), 2)


# --- live: this process's own loopback connections --------------------------------------------

def _own(sockets, sock):
    port = sock.getsockname()[1]
    peer = sock.getpeername()[1]
    hits = [s for s in sockets if s.local_port == port and s.remote_port == peer]
    assert len(hits) == 1, hits
    return hits[0]


def test_live_dump_finds_connections_with_bytes_and_pid(live_pairs):
    nets = sk.RemoteNetworks(["127.0.0.0/8", "::1/128"])
    found, problems = sk.dump_tcp_sockets(networks=nets)
    assert problems == []
    for c, s, up, down in live_pairs:
        cs, ss_ = _own(found, c), _own(found, s)
        assert cs.source == "sock_diag" and cs.state == "ESTABLISHED"
        assert cs.uid == os.geteuid() and cs.inode == os.fstat(c.fileno()).st_ino
        assert up <= cs.bytes_sent <= up + 1 and cs.bytes_received == down and cs.bytes_sent_wire == up
        assert ss_.bytes_sent == down and ss_.bytes_received == up
        procs, problems = map_inodes_to_processes([cs.inode, ss_.inode])
        assert problems == []
        assert procs[cs.inode].pid == os.getpid() == procs[ss_.inode].pid
        assert procs[cs.inode].uid == os.getuid()


@pytest.mark.parametrize("nets", [["127.0.0.0/8"], ["::1/128"], ["127.0.0.1/32", "::1/128"],
                                  ["0.0.0.0/0"], ["10.0.0.0/8"]])
def test_live_kernel_filter_equals_userland_filter(live_pairs, nets):
    mine = {os.fstat(x.fileno()).st_ino for c, s, _, _ in live_pairs for x in (c, s)}
    results = []
    for single_walk in (True, False):
        for kernel_filter in (True, False):
            with sk.TcpDumper(single_walk=single_walk, kernel_filter=kernel_filter) as d:
                got, problems = d.dump(networks=sk.RemoteNetworks(nets))
                assert problems == [] and d.notes == []
            results.append({s.inode for s in got if s.inode in mine})
    assert all(r == results[0] for r in results)
    if nets == ["127.0.0.0/8"]:   # the IPv4 pair and the IPv4-mapped pair (kernel unwraps)
        assert len(results[0]) == 4
    if nets == ["10.0.0.0/8"]:
        assert results[0] == set()


def test_live_proc_fallback(live_pairs):
    found, problems = sk.dump_tcp_sockets(networks=sk.RemoteNetworks(["127.0.0.0/8", "::1/128"]),
                                          use_netlink=False)
    assert problems and all("no byte counters" in p for p in problems)
    for c, s, _, _ in live_pairs:
        got = _own(found, c)
        assert got.source == "proc" and got.inode == os.fstat(c.fileno()).st_ino and got.bytes_sent is None


def test_netlink_refused_falls_back_with_reason(live_pairs):
    def refuse(timeout=2.0):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    with sk.TcpDumper(netlink_factory=refuse) as dumper:
        found, problems = dumper.dump(networks=sk.RemoteNetworks(["127.0.0.0/8", "::1/128"]))
        assert dumper.last_source == "proc"
        # refused once, not asked again: the socket will not open next cycle either
        again, _ = dumper.dump(networks=sk.RemoteNetworks(["127.0.0.0/8", "::1/128"]))
    assert any("netlink sock_diag unavailable (EPERM" in p and "/proc/net/tcp" in p for p in problems)
    assert _own(found, live_pairs[0][0]).source == "proc"
    assert _own(again, live_pairs[0][0]).source == "proc"




def _audit(program: bytes) -> None:
    """inet_diag_bc_audit's rules: yes is the op's own size (1 byte), no lands on an op of the
    yes chain or exactly at the end (accept) or 4 past it (reject), everything 4-aligned."""
    starts, pos = set(), 0
    while pos < len(program):
        starts.add(pos)
        code, yes, no = struct.unpack_from("=BBH", program, pos)
        assert 4 <= yes <= 255 and yes % 4 == 0 and no % 4 == 0
        pos += yes
    assert pos == len(program)
    for pos in starts:
        code, yes, no = struct.unpack_from("=BBH", program, pos)
        assert pos + no in starts or pos + no in (len(program), len(program) + 4), (pos, no)


def _peer(address: str) -> tuple:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return socket.AF_INET, ip.packed + bytes(12)
    return socket.AF_INET6, ip.packed


S3_LIKE = ([f"{a}.{b}.{c}.0/{p}" for a, b, c, p in
            ((52, 216, 0, 15), (54, 231, 0, 16), (3, 5, 0, 19), (16, 182, 0, 16), (18, 34, 0, 19))]
           + [f"{(i * 37) % 223 + 1}.{(i * 91) % 256}.{(i * 13) % 256}.0/24" for i in range(300)]
           + [f"2600:1f{i % 100:02x}:{i:x}::/48" for i in range(200)] + ["2001:db8:5::/48"])


def test_a_large_list_is_a_trie_of_covering_networks():
    import random
    nets = sk.RemoteNetworks(S3_LIKE)
    program = nets.bytecode()
    _audit(program)
    cover = sk.RemoteNetworks(nets.kernel_networks(4) + nets.kernel_networks(6))
    assert len(cover.networks) <= 2 * sk.KERNEL_NETWORKS_PER_FAMILY < len(nets.networks)
    rng = random.Random(7)
    probes = ["52.217.3.4", "54.231.200.1", "3.5.31.255", "3.5.32.0", "16.183.0.1", "8.8.8.8",
              "127.0.0.1", "::1", "2600:1f00:0::9", "2600:1f63:63::1", "2600:1fa0::1",
              "2001:db8:5::7", "2001:db8:6::7"]
    probes += [str(ipaddress.ip_network(n).network_address + 5) for n in S3_LIKE]
    probes += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(3000)]
    probes += [str(ipaddress.IPv6Address((0x2600 << 112) | rng.getrandbits(112))) for _ in range(2000)]
    for address in probes:
        family, raw = _peer(address)
        accepted = _run_bytecode(program, family, raw)
        assert accepted is (address in cover), address     # the kernel: the covering networks
        assert accepted or address not in nets, address     # never less than the networks
    # an IPv6 socket's IPv4-mapped peer is tested as IPv4
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:52.217.3.4")
    assert _run_bytecode(program, socket.AF_INET6, mapped)


def test_the_trie_costs_a_few_conditions_per_socket():
    program = sk.RemoteNetworks(S3_LIKE).bytecode()
    for address in ("8.8.8.8", "52.217.3.4", "2600:1f05:5::1", "::1"):
        trace: list = []
        _run_bytecode(program, *_peer(address), trace)
        assert len(trace) < 30, (address, len(trace))   # linearly: up to 1,000 ops


@pytest.mark.parametrize("single_walk", [True, False])
def test_live_kernel_accepts_the_trie_and_filters_as_userland(live_pairs, single_walk):
    mine = {os.fstat(x.fileno()).st_ino for c, s, _, _ in live_pairs for x in (c, s)}
    nets = sk.RemoteNetworks(S3_LIKE + ["127.0.0.0/8", "::1/128"])
    assert nets.bytecode() is not None and len(nets.networks) > sk.LINEAR_NETWORKS
    with sk.TcpDumper(single_walk=single_walk, kernel_filter=True) as kernel:
        got, problems = kernel.dump(networks=nets)
        assert problems == [] and kernel.notes == [] and kernel.kernel_filter
    with sk.TcpDumper(single_walk=single_walk, kernel_filter=False) as userland:
        want, _ = userland.dump(networks=nets)
    assert {s.inode for s in got if s.inode in mine} == {s.inode for s in want if s.inode in mine}
    assert len({s.inode for s in got} & mine) == 2 * len(live_pairs)
