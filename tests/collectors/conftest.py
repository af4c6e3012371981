"""Fixtures of the collector tests: this test process's own loopback connections."""

from __future__ import annotations

import socket
import struct
import time

import pytest


def settle(*socks: socket.socket) -> None:
    """Wait until every byte the sockets sent is acknowledged (tcpi_unacked == 0)."""
    deadline = time.monotonic() + 5
    while any(struct.unpack_from("=I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104),
                                 24)[0] for s in socks):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def recv_exactly(s: socket.socket, n: int) -> None:
    """Read exactly ``n`` bytes."""
    got = 0
    while got < n:
        chunk = s.recv(n - got)
        assert chunk
        got += len(chunk)


@pytest.fixture
def live_pairs():
    """Loopback connection pairs of this process (IPv4, IPv6, IPv4-mapped) with known bytes:
    (client, server, bytes up, bytes down)."""
    made = []
    opened = []
    try:
        for family, host, up, down in ((socket.AF_INET, "127.0.0.1", 4321, 8765),
                                       (socket.AF_INET6, "::1", 1111, 2222),
                                       (socket.AF_INET6, "::ffff:127.0.0.1", 333, 444)):
            lst = socket.socket(family, socket.SOCK_STREAM)
            opened.append(lst)
            try:
                if host.startswith("::ffff:"):
                    lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                lst.bind((host, 0))
            except OSError:
                if family == socket.AF_INET6:
                    continue   # no IPv6 loopback here
                raise
            lst.listen(4)
            c = socket.create_connection(lst.getsockname()[:2], timeout=5)
            opened.append(c)
            s, _ = lst.accept()
            opened.append(s)
            c.sendall(b"u" * up)
            recv_exactly(s, up)
            s.sendall(b"d" * down)
            recv_exactly(c, down)
            settle(c, s)
            made.append((c, s, up, down))
        yield made
    finally:
        for s in opened:
            s.close()
