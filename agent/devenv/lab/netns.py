"""Network-namespace plumbing for the lab: ``ip`` commands, entering a namespace, safety checks.

Everything here acts only on namespaces whose names carry the lab's own prefix. The safety
check (:func:`assert_isolated`) is what stands between a lab bug and packets leaving the
machine: each lab namespace may hold only ``lo`` and links the lab created, no veth may have a
peer outside the lab (in particular none in the machine's root namespace), no namespace may have
a default route, and every address must be in the lab's ranges.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import threading
from typing import Any, Iterable, Iterator, Sequence

logger = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

# The only address space lab namespaces may use (DEVELOPERS.md, network safety): RFC 5737
# documentation ranges 198.51.100.0/24 and 203.0.113.0/24, RFC 1918 10.0.0.0/8, loopback.
# 192.0.2.0/24 is deliberately absent.
LAB_NETWORKS = tuple(ipaddress.ip_network(n) for n in
                     ("10.0.0.0/8", "198.51.100.0/24", "203.0.113.0/24", "127.0.0.0/8"))
IMDS_ADDRESS = "169.254.169.254"

_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.Lock()


class LabSafetyError(RuntimeError):
    """The lab is not isolated from the machine: no lab traffic may be sent."""


def ip(*args: str, netns: str | None = None, check: bool = True,
       json_out: bool = False) -> Any:
    """Run ``ip [-n NS] [-j] ARGS``; returns parsed JSON with ``json_out``, else stdout text."""
    argv = ["ip"]
    if netns:
        argv += ["-n", netns]
    if json_out:
        argv += ["-j"]
    argv += list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    if json_out:
        return json.loads(proc.stdout or "[]")
    return proc.stdout


def list_netns() -> list[str]:
    """Names of every named network namespace on the machine (``ip netns list``)."""
    try:
        entries = ip("netns", "list", json_out=True)
    except (RuntimeError, json.JSONDecodeError):
        return []
    return [e["name"] for e in entries if "name" in e]


def netns_available() -> tuple[bool, str]:
    """Whether this process can build a lab, and if not, why (a sentence for a skip)."""
    if os.geteuid() != 0:
        return False, "the lab needs root (network namespaces, veth pairs)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return False, f"the lab needs the {tool!r} command"
    if not os.path.exists("/dev/net/tun"):
        return False, "the lab's NAT needs /dev/net/tun"
    probe = f"s3ralprobe{os.getpid()}"
    try:
        subprocess.run(["ip", "netns", "add", probe], check=True, capture_output=True, timeout=10)
    except (subprocess.SubprocessError, OSError) as exc:
        return False, f"cannot create a network namespace: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return True, "root with network namespace support"


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the block with the calling thread inside lab namespace ``name``, then return.

    setns(2) changes only the calling thread; a socket keeps the namespace it was created in,
    so a listener bound here serves inside the lab after the thread has come back.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def _netns_ids(netns: str | None) -> dict[int, str | None]:
    """nsid -> namespace name as seen from ``netns`` (None for an unnamed one, e.g. the root)."""
    out: dict[int, str | None] = {}
    for entry in ip("netns", "list-id", netns=netns, json_out=True):
        out[int(entry["nsid"])] = entry.get("name")
    return out


def check_isolation(namespaces: Sequence[str], allowed_links: dict[str, Iterable[str]],
                    imds_netns: str | None) -> list[str]:
    """Every reason the lab is not isolated; empty when it is.

    Checks, in each lab namespace: only ``lo`` and the links the lab made; each veth peer is in
    a lab namespace; no default route (IPv4 or IPv6); addresses only in the lab ranges (and
    169.254.169.254 only in ``imds_netns``). In the root namespace: no veth whose peer is in a
    lab namespace.
    """
    problems: list[str] = []
    lab = set(namespaces)
    for ns in namespaces:
        if ns not in list_netns():
            problems.append(f"{ns}: namespace does not exist")
            continue
        ids = _netns_ids(ns)
        allowed = set(allowed_links.get(ns, ())) | {"lo"}
        for link in ip("-d", "link", "show", netns=ns, json_out=True):
            name = link.get("ifname", "?")
            if name not in allowed:
                problems.append(f"{ns}: unexpected link {name}")
            kind = (link.get("linkinfo") or {}).get("info_kind")
            if kind == "veth":
                peer_ns = link.get("link_netnsid")
                if peer_ns is None:
                    continue  # both ends in this namespace
                peer_name = ids.get(int(peer_ns))
                if peer_name not in lab:
                    problems.append(f"{ns}: veth {name} has its peer outside the lab "
                                    f"(nsid {peer_ns}, {peer_name or 'unnamed: the root namespace?'})")
        for family in ("-4", "-6"):
            for route in ip(family, "route", "show", "table", "all", netns=ns, json_out=True):
                if route.get("type") in ("local", "broadcast", "multicast", "anycast"):
                    continue
                if route.get("dst") in ("default", "0.0.0.0/0", "::/0"):
                    problems.append(f"{ns}: default route {route}")
        for link in ip("addr", "show", netns=ns, json_out=True):
            for addr in link.get("addr_info", []):
                local = addr.get("local", "")
                try:
                    value = ipaddress.ip_address(local)
                except ValueError:
                    continue
                if value.version == 6:
                    if not (value.is_loopback or value.is_link_local):
                        problems.append(f"{ns}: IPv6 address {local}")
                    continue
                if local == IMDS_ADDRESS and ns == imds_netns:
                    continue
                if not any(value in net for net in LAB_NETWORKS):
                    problems.append(f"{ns}: address {local} outside the lab ranges")
    root_ids = _netns_ids(None)
    for link in ip("-d", "link", "show", json_out=True):
        if (link.get("linkinfo") or {}).get("info_kind") != "veth":
            continue
        peer = link.get("link_netnsid")
        if peer is not None and root_ids.get(int(peer)) in lab:
            problems.append(f"root namespace: veth {link.get('ifname')} peers into "
                            f"{root_ids.get(int(peer))}")
    return problems


def assert_isolated(namespaces: Sequence[str], allowed_links: dict[str, Iterable[str]],
                    imds_netns: str | None) -> None:
    """Raise :class:`LabSafetyError` unless :func:`check_isolation` finds nothing."""
    problems = check_isolation(namespaces, allowed_links, imds_netns)
    if problems:
        raise LabSafetyError("lab refused, not isolated: " + "; ".join(problems))
