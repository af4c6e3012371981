"""Capture real kernel output for the parser tests: sock_diag dump replies and /proc/net/tcp{,6}.

Run as root: ``python tests/collectors/capture_sock_diag.py`` creates a throwaway network namespace
(``s3ra-capture-PID``), brings up its loopback, re-runs itself inside it (so the fixtures hold
only the sockets made here), and deletes the namespace afterwards, also on failure. Without
root (or without ``ip``) it runs on loopback in the current namespace and keeps only the
sockets it made (``--no-netns`` forces that).

Traffic: 127.0.0.1, ::1 and ::ffff:127.0.0.1 only, between sockets of this process.

Writes into tests/collectors/fixtures/sock_diag/:
  sock_diag_ipv4_all.hex, sock_diag_ipv6_all.hex      SOCK_DIAG_BY_FAMILY dump of every state,
                                                       one datagram a line
  sock_diag_ipv4_connected.hex, ..._ipv6_connected.hex  the same with CONNECTED_STATES
  sock_diag_both_all.hex                               TCPDIAG_GETSOCK dump (both families, one walk)
  sock_diag_both_filtered.hex                          the same, CONNECTED_STATES and the bytecode
                                                       filter for 127.0.0.2/32 + 2001:db8::/32
  request_both_filtered.hex                            the request that was sent for it
  sock_diag_error_einval.hex   NLMSG_ERROR (EINVAL) to a request for family 250 (>= AF_MAX)
  sock_diag_done_enoent.hex    NLMSG_DONE carrying -ENOENT: a dump for a protocol with no handler
  proc_net_tcp.txt, proc_net_tcp6.txt                 the /proc text, same moment
  capture.json                                         what was made: ports, uids, inodes, bytes
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import time

from s3_route_agent.collectors import sock_diag as sk

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures", "sock_diag")
NOBODY = 65534


def _tcp_unacked(s: socket.socket) -> int:
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("=I", info, 24)[0]  # tcpi_unacked


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        b = s.recv(n)
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _settle(*socks: socket.socket) -> None:
    deadline = time.monotonic() + 5
    while any(_tcp_unacked(s) for s in socks):
        if time.monotonic() > deadline:
            raise RuntimeError("data not acknowledged within 5 s on loopback")
        time.sleep(0.01)


def _pair(listener: socket.socket, family: int, connect_to, client_sends: int, server_sends: int,
          euid: int | None = None):
    if euid is not None:
        os.seteuid(euid)  # the socket inode's uid is the creator's fsuid
    try:
        c = socket.socket(family, socket.SOCK_STREAM)
    finally:
        if euid is not None:
            os.seteuid(0)
    c.settimeout(5)
    c.connect(connect_to)
    s, _ = listener.accept()
    s.settimeout(5)
    if client_sends:
        c.sendall(b"c" * client_sends)
        _recv_exactly(s, client_sends)
    if server_sends:
        s.sendall(b"s" * server_sends)
        _recv_exactly(c, server_sends)
    _settle(c, s)
    return c, s


def _describe(name: str, s: socket.socket, expect_state: str, sent: int, received: int, uid: int):
    local = s.getsockname()
    remote = s.getpeername()
    return {
        "name": name, "family": "ipv4" if s.family == socket.AF_INET else "ipv6",
        "local_ip": local[0], "local_port": local[1], "remote_ip": remote[0], "remote_port": remote[1],
        "state": expect_state, "uid": uid, "inode": os.fstat(s.fileno()).st_ino,
        "app_bytes_sent": sent, "app_bytes_received": received,
    }


def _hex_lines(datagrams) -> str:
    return "".join(d.hex() + "\n" for d in datagrams)


def _error_reply(family: int, protocol: int) -> list[bytes]:
    """Send a deliberately bad request and return the kernel's NLMSG_ERROR datagram."""
    with sk.open_sock_diag(2.0) as nl:
        body = struct.pack("=BBBBI48x", family, protocol, 0, 0, 0xFFFFFFFF)
        nl.sendto(struct.pack("=IHHII", 16 + len(body), sk.SOCK_DIAG_BY_FAMILY,
                              sk.NLM_F_REQUEST | sk.NLM_F_DUMP, 7, 0) + body, (0, 0))
        return [nl.recv(65536)]


def capture(in_netns: bool) -> dict:
    os.makedirs(FIXTURES, exist_ok=True)
    made = []
    keep = []  # keep every socket open until the dumps are done

    l4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l4.bind(("127.0.0.1", 0))
    l4.listen(16)
    l6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    l6.bind(("::1", 0))
    l6.listen(16)
    lm = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)  # dual-stack, IPv4-mapped peers
    lm.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lm.bind(("::ffff:127.0.0.1", 0))
    lm.listen(16)
    keep += [l4, l6, lm]
    for name, lst in (("listen_v4", l4), ("listen_v6", l6), ("listen_mapped", lm)):
        a = lst.getsockname()
        made.append({"name": name, "family": "ipv4" if lst.family == socket.AF_INET else "ipv6",
                     "local_ip": a[0], "local_port": a[1], "state": "LISTEN", "uid": 0,
                     "inode": os.fstat(lst.fileno()).st_ino})

    c, s = _pair(l4, socket.AF_INET, l4.getsockname(), 3000, 1234)
    made += [_describe("v4_client", c, "ESTABLISHED", 3000, 1234, 0),
             _describe("v4_server", s, "ESTABLISHED", 1234, 3000, 0)]
    keep += [c, s]

    c, s = _pair(l6, socket.AF_INET6, l6.getsockname()[:2], 5000, 777)
    made += [_describe("v6_client", c, "ESTABLISHED", 5000, 777, 0),
             _describe("v6_server", s, "ESTABLISHED", 777, 5000, 0)]
    keep += [c, s]

    c, s = _pair(lm, socket.AF_INET6, ("::ffff:127.0.0.1", lm.getsockname()[1]), 100, 200)
    made += [_describe("mapped_client", c, "ESTABLISHED", 100, 200, 0),
             _describe("mapped_server", s, "ESTABLISHED", 200, 100, 0)]
    keep += [c, s]

    # the "interesting" network: a peer on 127.0.0.2 (a client bound to 127.0.0.1)
    ls3 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls3.bind(("127.0.0.2", 0))
    ls3.listen(4)
    keep.append(ls3)
    a = ls3.getsockname()
    made.append({"name": "listen_s3", "family": "ipv4", "local_ip": a[0], "local_port": a[1],
                 "state": "LISTEN", "uid": 0, "inode": os.fstat(ls3.fileno()).st_ino})
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.bind(("127.0.0.1", 0))
    c.connect(a)
    s, _ = ls3.accept()
    c.sendall(b"q" * 2048)
    _recv_exactly(s, 2048)
    s.sendall(b"r" * 4096)
    _recv_exactly(c, 4096)
    _settle(c, s)
    made += [_describe("s3_client", c, "ESTABLISHED", 2048, 4096, 0),
             _describe("s3_server", s, "ESTABLISHED", 4096, 2048, 0)]
    keep += [c, s]

    c, s = _pair(l4, socket.AF_INET, l4.getsockname(), 42, 0, euid=NOBODY)
    made += [_describe("v4_client_nobody", c, "ESTABLISHED", 42, 0, NOBODY),
             _describe("v4_server_of_nobody", s, "ESTABLISHED", 0, 42, 0)]
    keep += [c, s]

    # half-closed: client FIN_WAIT2 (a full socket), server CLOSE_WAIT
    c, s = _pair(l4, socket.AF_INET, l4.getsockname(), 10, 20)
    c.shutdown(socket.SHUT_WR)
    assert s.recv(1) == b""
    _settle(c, s)
    made += [_describe("halfclosed_client", c, "FIN_WAIT2", 10, 20, 0),
             _describe("halfclosed_server", s, "CLOSE_WAIT", 20, 10, 0)]
    keep += [c, s]

    # TIME_WAIT: the client closes first, then the server; the client's port stays in TIME_WAIT
    c, s = _pair(l4, socket.AF_INET, l4.getsockname(), 5, 0)
    tw = _describe("timewait_client", c, "TIME_WAIT", 5, 0, 0)
    tw["inode"] = 0
    tw["uid"] = 0
    c.close()
    assert s.recv(1) == b""
    s.close()
    time.sleep(0.05)
    made.append(tw)

    dumps = {}
    for fam, tag in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
        dumps[f"sock_diag_{tag}_all.hex"] = sk.netlink_dump_raw(sk.build_request(fam, sk.ALL_STATES))
        dumps[f"sock_diag_{tag}_connected.hex"] = sk.netlink_dump_raw(sk.build_request(fam, sk.CONNECTED_STATES))
    dumps["sock_diag_both_all.hex"] = sk.netlink_dump_raw(sk.build_request_both(sk.ALL_STATES))
    request = sk.build_request_both(sk.CONNECTED_STATES, 1, True,
                                    sk.RemoteNetworks(["127.0.0.2/32", "2001:db8::/32"]).bytecode())
    dumps["request_both_filtered.hex"] = [request]
    dumps["sock_diag_both_filtered.hex"] = sk.netlink_dump_raw(request)
    with open("/proc/net/tcp") as f:
        proc4 = f.read()
    with open("/proc/net/tcp6") as f:
        proc6 = f.read()
    dumps["sock_diag_error_einval.hex"] = _error_reply(250, socket.IPPROTO_TCP)  # family >= AF_MAX
    dumps["sock_diag_done_enoent.hex"] = _error_reply(socket.AF_INET, 200)      # no such protocol

    for sock in keep:
        sock.close()

    for fname, datagrams in dumps.items():
        with open(os.path.join(FIXTURES, fname), "w") as f:
            f.write(_hex_lines(datagrams))
    with open(os.path.join(FIXTURES, "proc_net_tcp.txt"), "w") as f:
        f.write(proc4)
    with open(os.path.join(FIXTURES, "proc_net_tcp6.txt"), "w") as f:
        f.write(proc6)
    tcp_info_len = None
    for d in dumps["sock_diag_ipv4_all.hex"]:
        off = 0
        while off + 16 <= len(d):
            ln, typ = struct.unpack_from("=IH", d, off)
            if typ == sk.SOCK_DIAG_BY_FAMILY:
                pos = off + 16 + 72
                while pos + 4 <= off + ln:
                    alen, atype = struct.unpack_from("=HH", d, pos)
                    if atype == sk.INET_DIAG_INFO:
                        tcp_info_len = alen - 4
                    pos += (alen + 3) & ~3
            off += (ln + 3) & ~3
    meta = {
        "kernel": platform.release(), "machine": platform.machine(), "byteorder": sys.byteorder,
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "in_private_netns": in_netns, "pid": os.getpid(), "tcp_info_len": tcp_info_len,
        "sockets": made,
    }
    with open(os.path.join(FIXTURES, "capture.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return meta


def main(argv: list[str]) -> int:
    if "--inner" in argv:
        meta = capture(in_netns=True)
        print(f"captured {len(meta['sockets'])} sockets in a private netns, tcp_info {meta['tcp_info_len']} bytes")
        return 0
    if os.geteuid() != 0 or shutil.which("ip") is None or "--no-netns" in argv:
        print("not root or no ip(8): capturing in the current namespace (loopback only)", file=sys.stderr)
        if os.geteuid() != 0:
            raise SystemExit("the nobody-owned socket needs seteuid: run as root")
        capture(in_netns=False)
        return 0
    ns = f"s3ra-capture-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--inner"],
                       check=True, timeout=120)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
