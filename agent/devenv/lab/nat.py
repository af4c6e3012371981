"""A tiny userspace NAT gateway for the lab: ``python -m s3_route_agent.devenv.lab.nat`` inside the NAT namespace.

This machine has neither iptables nor nft, so the lab's NAT gateway translates in user space
through a TUN device, like an AWS NAT gateway: outbound packets from the VPC (10.0.0.0/8) get the
NAT's public address as source, the (protocol, port, remote) tuple is remembered, and replies to
the public address are translated back (VPC user guide, "NAT gateway basics": source NAT to the
Elastic IP). Ports are preserved.

SIGUSR1 makes the translator drop every packet, SIGUSR2 translate again: how the lab stands in
for VPC Block Public Access in bidirectional mode, which drops traffic through NAT gateways and
internet gateways (EC2 API reference, VpcBlockPublicAccessOptions). Packets still reach the NAT
namespace, whose kernel answers an expiring TTL as before; nothing passes the translator.

Packets reach the TUN device by the NAT namespace's routes (the S3 ranges) and come back into the
kernel from it; policy routing (``iif nat0 lookup 100``) sends re-injected packets on. The kernel
decrements TTL on both passes, so the translator adds one back: the NAT gateway stays a single
hop in a traceroute, where it answers from its private address (10.0.0.5) when the TTL runs out.
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import logging
import os
import select
import signal
import struct
import subprocess
import sys

logger = logging.getLogger(__name__)

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
REINJECT_TABLE = "100"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def _fix_checksums(packet: bytearray, ihl: int) -> None:
    """Recompute the IPv4 header checksum and the TCP/UDP checksum (pseudo-header included)."""
    packet[10:12] = b"\0\0"
    packet[10:12] = struct.pack("!H", checksum(bytes(packet[:ihl])))
    proto = packet[9]
    offset = {6: 16, 17: 6}.get(proto)
    if offset is None:
        return
    segment = packet[ihl:]
    if proto == 17 and segment[6:8] == b"\0\0":
        return  # UDP without checksum stays so
    segment[offset:offset + 2] = b"\0\0"
    pseudo = bytes(packet[12:20]) + struct.pack("!BBH", 0, proto, len(segment))
    value = checksum(pseudo + bytes(segment))
    if proto == 17 and value == 0:
        value = 0xFFFF
    packet[ihl + offset:ihl + offset + 2] = struct.pack("!H", value)


class Translator:
    """Port-preserving source NAT for one public address; pure (bytes in, bytes out)."""

    def __init__(self, inside: str, public: str) -> None:
        """Translate sources in ``inside`` (a CIDR) to ``public``."""
        self.inside = ipaddress.ip_network(inside)
        self.public = ipaddress.ip_address(public).packed
        self.sessions: dict[tuple[int, int, bytes], bytes] = {}

    @staticmethod
    def _ports(packet: bytearray, ihl: int) -> tuple[int, int]:
        if packet[9] in (6, 17) and len(packet) >= ihl + 4:
            return struct.unpack("!HH", bytes(packet[ihl:ihl + 4]))
        if packet[9] == 1 and len(packet) >= ihl + 8:  # ICMP echo: the identifier is the "port"
            ident = struct.unpack("!H", bytes(packet[ihl + 4:ihl + 6]))[0]
            return ident, ident
        return 0, 0

    def translate(self, raw: bytes) -> bytes | None:
        """The translated packet, or None to drop it (not IPv4, or no session for a reply)."""
        if len(raw) < 20 or raw[0] >> 4 != 4:
            return None
        packet = bytearray(raw)
        ihl = (packet[0] & 0x0F) * 4
        src, dst = bytes(packet[12:16]), bytes(packet[16:20])
        sport, dport = self._ports(packet, ihl)
        proto = packet[9]
        if ipaddress.ip_address(src) in self.inside:
            self.sessions[(proto, sport, dst)] = src
            packet[12:16] = self.public
        elif dst == self.public:
            inside = self.sessions.get((proto, dport, src))
            if inside is None:
                return None
            packet[16:20] = inside
        else:
            return None
        # The kernel forwarded this packet once into the TUN device and will again out of it.
        packet[8] = min(255, packet[8] + 1)
        _fix_checksums(packet, ihl)
        return bytes(packet)


def open_tun(name: str) -> int:
    """Create (in this process's namespace) and open TUN device ``name``; returns its fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def serve(tun: str, inside: str, public: str, translate_to: list[str],
          reinject_routes: list[str]) -> None:
    """Create the TUN device, route ``translate_to`` and the public address into it, translate.

    Runs until SIGTERM. ``reinject_routes`` are routes of table 100 ("CIDR via ADDR" or
    "CIDR dev IF"), which carries packets coming back out of the TUN device.
    """
    fd = open_tun(tun)
    _ip("link", "set", tun, "up")
    for cidr in translate_to + [f"{public}/32"]:
        _ip("route", "replace", cidr, "dev", tun)
    for route in reinject_routes:
        _ip("route", "replace", *route.split(), "table", REINJECT_TABLE)
    _ip("rule", "add", "iif", tun, "lookup", REINJECT_TABLE, "pref", "100")
    nat = Translator(inside, public)
    stop = False
    blocked = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    def _block(signum: int, _: object) -> None:
        nonlocal blocked
        blocked = signum == signal.SIGUSR1
        logger.warning("lab NAT: %s", "dropping every packet" if blocked else "translating")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGUSR1, _block)
    signal.signal(signal.SIGUSR2, _block)
    print("ready", flush=True)
    while not stop:
        try:
            ready, _, _ = select.select([fd], [], [], 0.2)
        except InterruptedError:
            continue
        if not ready:
            continue
        raw = os.read(fd, 65535)
        if blocked:
            continue
        out = nat.translate(raw)
        if out is not None:
            os.write(fd, out)


def main(argv: list[str] | None = None) -> int:
    """Command line of the lab NAT (started by :mod:`s3_route_agent.devenv.lab.lab` inside the NAT namespace)."""
    parser = argparse.ArgumentParser(prog="s3_route_agent.devenv.lab.nat")
    parser.add_argument("--tun", default="nat0")
    parser.add_argument("--inside", required=True)
    parser.add_argument("--public", required=True)
    parser.add_argument("--translate", action="append", default=[])
    parser.add_argument("--reinject", action="append", default=[],
                        help="a route of table 100, e.g. \"10.0.0.0/16 dev eth0\"")
    args = parser.parse_args(argv)
    serve(args.tun, args.inside, args.public, args.translate, args.reinject)
    return 0


if __name__ == "__main__":
    sys.exit(main())
