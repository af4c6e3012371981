"""Helpers shared by several test modules (imported as ``support``: pyproject's pytest
``pythonpath`` puts tests/ on the path). Not fixtures: those live in conftest.py."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import secrets
import select
import subprocess
import sys
from typing import Any, Iterator
from urllib.parse import urlsplit

from s3_route_agent.config import AgentConfig
from s3_route_agent.report.document import Report
from s3_route_agent.runs.check import CheckDeps
from s3_route_agent.sinks.base import Sink
from s3_route_agent.wiring import Wiring


class MemorySink(Sink):
    """A sink that keeps every report it receives, in order: the redacted JSON documents (what a
    JSON sink ships) in ``reports`` and the typed reports in ``typed``."""

    name = "memory"

    def __init__(self) -> None:
        """Start empty."""
        self.reports: list[dict[str, Any]] = []
        self.typed: list[Report] = []

    def emit(self, report: Report) -> None:
        """Keep the report."""
        self.typed.append(report)
        self.reports.append(report.document)


def transfers_to(deps: CheckDeps, endpoint: str) -> CheckDeps:
    """``deps`` whose test transfers and oracle reads go to ``endpoint`` (the local moto server,
    path style) instead of the target's name: in the local environment the S3 names resolve to
    documentation addresses that must never receive traffic. Only loopback is accepted."""
    host = urlsplit(endpoint).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"refusing a non-loopback transfer endpoint {endpoint!r}")
    real = deps.s3_client_for

    def client_for(plan: Any, timeout: float) -> Any:
        return real(dataclasses.replace(plan, endpoint_url=endpoint, addressing_style="path"),
                    timeout)
    return dataclasses.replace(deps, s3_client_for=client_for)


class TransfersTo(Wiring):
    """The standard wiring, but every test transfer goes to ``endpoint`` (see transfers_to)."""

    def __init__(self, endpoint: str) -> None:
        """Transfers to ``endpoint``, a loopback URL."""
        self.endpoint = endpoint

    def check_deps(self, config: AgentConfig) -> CheckDeps:
        """The standard collectors, with the transfer client pointed at ``endpoint``."""
        return transfers_to(super().check_deps(config), self.endpoint)


class ObservesNamespace(Wiring):
    """The standard wiring, but the host's connections are observed inside network namespace
    ``netns`` (a test namespace): the sock_diag socket is opened there, the /proc fallback reads
    ``proc_net`` (``/proc/PID/net`` of a process in it). ``refuse_netlink`` makes every netlink
    socket fail with EPERM, as seccomp or RestrictAddressFamilies= would."""

    def __init__(self, netns: str, proc_net: str, refuse_netlink: bool = False) -> None:
        """Observe in ``netns``."""
        self.netns = netns
        self.proc_net = proc_net
        self.refuse_netlink = refuse_netlink

    def netlink_factory(self, timeout: float) -> Any:
        """A sock_diag socket created inside the namespace (it stays there)."""
        import errno

        from s3_route_agent.collectors.sock_diag import open_sock_diag
        from s3_route_agent.devenv.lab.netns import entered
        if self.refuse_netlink:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        with entered(self.netns):
            return open_sock_diag(timeout)

    def check_deps(self, config: AgentConfig) -> CheckDeps:
        """The standard collectors; the observer looks inside the namespace."""
        from s3_route_agent.collectors.connections import HostObserver
        from s3_route_agent.wiring import build_traffic
        observer = HostObserver(netlink_factory=self.netlink_factory, proc_net=self.proc_net)
        return dataclasses.replace(super().check_deps(config),
                                   traffic=build_traffic(config, observer))


@dataclasses.dataclass
class FlowNamespace:
    """A test network namespace holding known connections (see :func:`namespace_with_flows`)."""

    name: str
    server_pid: int
    client_pid: int
    connections: list[dict[str, Any]]
    client: Any = None               # the client's Popen

    def send_more(self, count: int) -> None:
        """Have the client send ``count`` more bytes on each connection (acknowledged)."""
        self.client.stdin.write(f"more {count}\n")
        self.client.stdin.flush()
        assert _read_line(self.client, 30).strip() == "ok"

    @property
    def proc_net(self) -> str:
        """``/proc/PID/net`` of a process inside the namespace (the /proc fallback's files)."""
        return f"/proc/{self.server_pid}/net"


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"helper did not answer within {timeout:.0f} s (exit {proc.poll()})")
    return line


@contextlib.contextmanager
def namespace_with_flows(addresses: list[str], sends: list[str], host_ip: str = "10.0.1.10",
                         port: int = 443) -> Iterator[FlowNamespace]:
    """A network namespace of this test's own: only ``lo`` (up), carrying ``host_ip`` and each
    of ``addresses`` (lab ranges only), no default route; a server listening on port ``port`` of
    every address; and a client process, bound to ``host_ip``, holding one connection per
    ``ADDR:BYTES`` in ``sends`` after sending exactly BYTES bytes. Every process is ended by its
    PID and the namespace is deleted, also on failure. Needs root."""
    from s3_route_agent.devenv.lab import netns
    name = f"s3rao-{secrets.token_hex(3)}"
    procs: list[subprocess.Popen[str]] = []
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=20)
    try:
        netns.ip("link", "set", "lo", "up", netns=name)
        for address in [host_ip, *addresses]:
            netns.ip("addr", "add", f"{address}/32", "dev", "lo", netns=name)
        netns.assert_isolated([name], {name: []}, imds_netns=None)   # before any packet
        base = ["ip", "netns", "exec", name, sys.executable, "-m",
                "s3_route_agent.devenv.flowclient"]
        server = subprocess.Popen(base + ["serve", *(f"{a}:{port}" for a in addresses)],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        procs.append(server)
        _read_line(server, 30)
        client = subprocess.Popen(base + ["send", "--bind", host_ip, *(
            f"{target.rsplit(':', 1)[0]}:{port}:{target.rsplit(':', 1)[1]}" for target in sends)],
            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
        procs.append(client)
        info = json.loads(_read_line(client, 30))
        yield FlowNamespace(name, server.pid, info["pid"], info["connections"], client)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.kill()                 # by PID: only what this helper started
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def can_make_namespaces() -> tuple[bool, str]:
    """Whether this process may create test network namespaces, and if not, why."""
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    from s3_route_agent.devenv.lab import netns
    return netns.netns_available()


# ---- packaging: the agent's wheel and the runtime wheelhouse --------------------------------------

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `make wheelhouse` (a prerequisite of `make test`) downloads the runtime dependencies for
# Python 3.9 here once; the packaging tests and the Python 3.9 test install from it offline.
WHEELHOUSE = os.path.join(REPO_ROOT, "build", "wheelhouse")
WHEELHOUSE_READY = os.path.join(WHEELHOUSE, ".complete")


def packaging_module() -> Any:
    """packaging/build_packages.py, imported by path (it is a script, not part of the agent)."""
    import importlib.util
    path = os.path.join(REPO_ROOT, "packaging", "build_packages.py")
    spec = importlib.util.spec_from_file_location("build_packages", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wheelhouse_or_skip() -> str:
    """The wheelhouse directory, or skip the calling test saying how to get it."""
    import pytest
    if not os.path.exists(WHEELHOUSE_READY):
        pytest.skip(f"no wheelhouse at {WHEELHOUSE}: `make wheelhouse` (part of `make test`) "
                    "downloads the runtime wheels once")
    return WHEELHOUSE
