"""A process that holds known TCP connections, for the observation tests and the lab scenario.

``python -m s3_route_agent.devenv.flowclient serve ADDR:PORT ...`` accepts connections on each
address and reads (and discards) whatever arrives, until killed; it prints ``ready`` once it
listens. ``python -m s3_route_agent.devenv.flowclient send [--bind ADDR] [--tls] DST:PORT:BYTES
...`` opens one connection per argument, sends exactly BYTES bytes of payload (with ``--tls``,
inside a TLS session and as the body of an unfinished HTTP PUT, so that an S3 server keeps the
connection open and waiting), waits until the peer acknowledged them, prints one JSON line
(its pid and each connection's addresses and payload), then holds the connections open until its
standard input closes; a line ``more N`` on standard input sends N more bytes on each (answered
``ok`` once acknowledged).

Network safety: it refuses any destination outside 127.0.0.0/8 and the lab ranges
(10.0.0.0/8, 198.51.100.0/24, 203.0.113.0/24), and any destination but loopback unless it runs
in one of the lab's or the tests' own network namespaces.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import socket
import ssl
import struct
import sys
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

ALLOWED = tuple(ipaddress.ip_network(n) for n in
                ("127.0.0.0/8", "10.0.0.0/8", "198.51.100.0/24", "203.0.113.0/24"))
TCPI_UNACKED = 24          # struct tcp_info: __u32 tcpi_unacked (include/uapi/linux/tcp.h)


NETNS_DIR = "/run/netns"
TEST_NETNS_PREFIXES = ("s3ral-", "s3rao-")   # the lab's and the observation tests' namespaces


def in_own_netns() -> bool:
    """True when this process runs in one of the agent's lab or test network namespaces (a
    namespace named under /run/netns with their prefix)."""
    try:
        own = os.stat("/proc/self/ns/net").st_ino
        names = os.listdir(NETNS_DIR)
    except OSError:
        return False
    for name in names:
        if not name.startswith(TEST_NETNS_PREFIXES):
            continue
        try:
            if os.stat(os.path.join(NETNS_DIR, name)).st_ino == own:
                return True
        except OSError:
            continue
    return False


def check_destination(address: str) -> None:
    """Refuse (SystemExit) a destination the network-safety rules do not allow."""
    value = ipaddress.ip_address(address)
    if not any(value in net for net in ALLOWED):
        raise SystemExit(f"flowclient: refusing {address}: not a loopback or lab address")
    if not value.is_loopback and not in_own_netns():
        raise SystemExit(f"flowclient: refusing {address}: only loopback outside a test "
                         "network namespace")


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def serve(endpoints: list[str]) -> int:
    """Listen on each ADDR:PORT; read and discard what every connection sends."""
    listeners = []
    for text in endpoints:
        host, port = _endpoint(text)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        listeners.append(sock)

    def drain(conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):
                pass

    def accept(listener: socket.socket) -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    for listener in listeners:
        threading.Thread(target=accept, args=(listener,), daemon=True).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


def _unacked(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("=I", info, TCPI_UNACKED)[0]


def send(targets: list[str], bind: str | None, tls: bool, ca: str | None) -> int:
    """Open the connections, send the bytes, report, hold until stdin closes."""
    held: list[Any] = []
    report: list[dict[str, Any]] = []
    context = None
    if tls:
        context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        if not ca:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    for text in targets:
        host_port, _, count = text.rpartition(":")
        host, port = _endpoint(host_port)
        size = int(count)
        check_destination(host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        raw = socket.socket(family, socket.SOCK_STREAM)
        if bind:
            raw.bind((bind, 0))
        raw.settimeout(20)
        raw.connect((host, port))
        conn: Any = raw
        if context is not None:
            conn = context.wrap_socket(raw, server_hostname="s3.amazonaws.com")
            # An HTTP PUT whose body never ends: the S3 server keeps reading, the connection
            # stays open and every payload byte is acknowledged.
            conn.sendall(b"PUT /demo-bucket/flowclient HTTP/1.1\r\nHost: s3.amazonaws.com\r\n"
                         b"Content-Length: 1073741824\r\n\r\n")
        conn.sendall(b"x" * size)
        _wait_acked(conn)
        local = conn.getsockname()
        remote = conn.getpeername()
        report.append({"local_ip": local[0], "local_port": local[1], "remote_ip": remote[0],
                       "remote_port": remote[1], "payload_bytes": size,
                       "inode": os.fstat(conn.fileno()).st_ino})
        held.append(conn)
    print(json.dumps({"pid": os.getpid(), "connections": report}), flush=True)
    for line in sys.stdin:          # "more N": N more bytes on every connection; EOF: done
        words = line.split()
        if len(words) == 2 and words[0] == "more":
            for conn in held:
                conn.sendall(b"y" * int(words[1]))
                _wait_acked(conn)
            print("ok", flush=True)
    for conn in held:
        conn.close()
    return 0


def _wait_acked(conn: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while _unacked(conn) and time.monotonic() < deadline:
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="s3_route_agent.devenv.flowclient")
    sub = parser.add_subparsers(dest="mode", required=True)
    serve_cmd = sub.add_parser("serve")
    serve_cmd.add_argument("endpoints", nargs="+")
    send_cmd = sub.add_parser("send")
    send_cmd.add_argument("--bind")
    send_cmd.add_argument("--tls", action="store_true")
    send_cmd.add_argument("--ca")
    send_cmd.add_argument("targets", nargs="+")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        for text in args.endpoints:
            check_destination(_endpoint(text)[0])
        return serve(args.endpoints)
    return send(args.targets, args.bind, args.tls, args.ca)


if __name__ == "__main__":
    sys.exit(main())
