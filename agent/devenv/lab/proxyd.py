"""The lab's HTTPS forward proxy: ``python -m s3_route_agent.devenv.lab.proxyd``, run inside the proxy namespace.

It answers ``CONNECT host:443`` only (what botocore sends for HTTPS through an HTTP proxy),
resolves ``host`` from the lab's DNS zone (the same records the lab resolver serves) and splices
bytes both ways. Its own connections leave from the proxy namespace, along that namespace's
routes: the proxy address's own path through the VPC.
"""

from __future__ import annotations

import argparse
import json
import logging
import select
import signal
import socket
import socketserver
import sys
from pathlib import Path

import dns.name
import dns.rdatatype

from s3_route_agent.devenv.localenv.environment import dns_zone_for
from s3_route_agent.devenv.localenv.world import WorldIds

logger = logging.getLogger(__name__)


def _resolver(ids_path: str):  # noqa: ANN202 - small closure factory
    data = json.loads(Path(ids_path).read_text())
    data["interface_endpoint_dns_names"] = tuple(data["interface_endpoint_dns_names"])
    zone = dns_zone_for(WorldIds(**data))

    def resolve(host: str) -> str | None:
        answer = zone.resolve(dns.name.from_text(host), dns.rdatatype.A)
        for rrset in answer.answer:
            if rrset.rdtype == dns.rdatatype.A:
                return str(rrset[0])
        return None
    return resolve


def serve(listen: str, port: int, ids_path: str) -> None:
    """Serve CONNECT on listen:port until SIGTERM."""
    resolve = _resolver(ids_path)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline(4096).decode("latin-1").split()
            while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                pass
            if len(line) < 2 or line[0].upper() != "CONNECT":
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host, _, port_text = line[1].rpartition(":")
            address = resolve(host)
            if address is None:
                self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            try:
                upstream = socket.create_connection((address, int(port_text)), timeout=10)
            except OSError:
                self.wfile.write(b"HTTP/1.1 504 Gateway Timeout\r\n\r\n")
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            client = self.connection
            with upstream:
                while True:
                    ready, _, _ = select.select([client, upstream], [], [], 30)
                    if not ready:
                        return
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        (upstream if sock is client else client).sendall(data)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((listen, port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """Command line of the lab proxy."""
    parser = argparse.ArgumentParser(prog="s3_route_agent.devenv.lab.proxyd")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=3128)
    parser.add_argument("--ids", required=True)
    args = parser.parse_args(argv)
    serve(args.listen, args.port, args.ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
