"""Fault injection for the tests and the fault benchmark (``bench/bench_faults.py``): what an
operator breaks under a running daemon, done to a file system the caller made for it and to an
endpoint on 127.0.0.1 (never to anything beyond the machine's loopback)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from pathlib import Path


def fill_filesystem(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte (a tmpfs the caller mounted: never
    the machine's own disks); returns the filler file, whose removal gives the space back."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        # Large writes first, then smaller, down to single bytes: a file system refuses a write
        # it cannot take whole only at the end, where the short write happens.
        for chunk in (1 << 20, 4096, 1):
            while True:
                try:
                    if os.write(fd, b"\0" * chunk) < chunk:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


class FaultyTcpEndpoint:
    """A TCP endpoint on 127.0.0.1 whose ``mode`` the caller switches: ``up`` forwards to
    ``upstream_port`` on 127.0.0.1, ``refuse`` closes every connection at once, ``hang`` accepts
    and never answers (a CloudWatch Logs endpoint that hangs). Switching closes the connections
    of the previous mode (clients keep connections alive). ``accepted`` counts connections."""

    def __init__(self, upstream_port: int | None = None, mode: str | None = None) -> None:
        """Forward to ``upstream_port`` (mode ``up``), or with none, ``hang``."""
        self.upstream_port = upstream_port
        self.mode = mode or ("up" if upstream_port is not None else "hang")
        self.accepted = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def set_mode(self, mode: str) -> None:
        """Switch to ``mode``, dropping every connection made so far."""
        with self._lock:
            self.mode = mode
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._open.clear()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                mode = self.mode
                if mode == "refuse":
                    conn.close()
                    continue
                self._open.append(conn)
            if mode == "up":
                threading.Thread(target=self._forward, args=(conn,), daemon=True).start()

    def _forward(self, conn: socket.socket) -> None:
        assert self.upstream_port is not None, "mode up needs an upstream port"
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            conn.close()
            return
        with self._lock:
            self._open.append(upstream)
        try:
            while True:
                ready, _, _ = select.select([conn, upstream], [], [], 1.0)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (upstream if src is conn else conn).sendall(data)
        except (OSError, ValueError):     # closed by set_mode
            return
        finally:
            for s in (conn, upstream):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self.sock.close()
        self.set_mode("refuse")
