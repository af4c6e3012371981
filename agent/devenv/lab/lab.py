"""The lab: a small VPC world in network namespaces this module creates and always removes.

Topology (every address is in 10.0.0.0/8, 198.51.100.0/24 or 203.0.113.0/24)::

    host   10.0.1.10  the agent; IMDS on 169.254.169.254 (lo), resolver 127.0.0.1:53, EC2 API
      |               routes = the app subnet's route table:
      |                 198.51.100.0/25 via 10.0.255.1   (pl-<S3 eu-west-1> -> gateway endpoint)
      |                 198.51.100.0/24, 203.0.113.0/24 via 10.0.0.5   (0.0.0.0/0 -> NAT, but
      |                 spelled as the lab ranges: a lab namespace never has a default route)
    router  bridge vpc0: the VPC fabric. The VPC router is not a hop on AWS (it never decrements
      |     TTL), so the lab models it at layer 2 and puts the route table on the host.
      +-- eni    10.0.2.50        S3 interface-endpoint ENI: serves S3 (HTTPS)
      +-- s3gw   10.0.255.1       S3 eu-west-1 (198.51.100.10/.11) as reached through the gateway
      |                           endpoint; also on the "internet" side of the NAT (10.201.0.2)
      +-- nat    10.0.0.5         NAT gateway (s3_route_agent.devenv.lab.nat, TUN); public address 203.0.113.200
      |            +-- s3us       S3 us-east-1 (203.0.113.10/.11), reachable only through the NAT
      +-- proxy  10.0.1.20:3128   HTTPS forward proxy (s3_route_agent.devenv.lab.proxyd), same routes as host

Safety (DEVELOPERS.md, non-negotiable): before any lab process starts, :meth:`Lab.start` checks
that every lab namespace holds only ``lo`` and the lab's own links, no veth has a peer outside
the lab, no namespace has a default route and every address is a lab address; it refuses
otherwise. Every lab packet is sent from inside a lab namespace. Teardown (processes by PID,
then the lab's own namespaces) runs from ``__exit__``, ``finally`` and ``atexit``.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import yaml

from s3_route_agent.devenv.lab import netns
from s3_route_agent.devenv.lab.netns import ip
from s3_route_agent.devenv.localenv import world
from s3_route_agent.devenv.localenv.environment import DEMO_BUCKET, safe_environ

logger = logging.getLogger(__name__)

LAB_PREFIX = "s3ral-"
ROLES = ("host", "router", "nat", "eni", "s3gw", "s3us", "proxy")
HOST_IP = world.HOST_IP                       # 10.0.1.10
NAT_IP = world.NAT_PRIVATE_IP                 # 10.0.0.5
NAT_PUBLIC_IP = world.NAT_PUBLIC_IP           # 203.0.113.200
ENI_IP = world.INTERFACE_ENDPOINT_IP          # 10.0.2.50
GATEWAY_NEXT_HOP = "10.0.255.1"
PROXY_IP = "10.0.1.20"
PROXY_PORT = 3128
VPC_PREFIX = 16
S3_EU_ADDRESSES = ("198.51.100.10", "198.51.100.11")
S3_US_ADDRESSES = ("203.0.113.10", "203.0.113.11")
GATEWAY_ROUTE = "198.51.100.0/25"             # world.S3_PREFIX_LIST_CIDRS["eu-west-1"]
NAT_ROUTES = ("198.51.100.0/24", "203.0.113.0/24")
_PROJECT_ROOT = str(Path(__file__).resolve().parents[3])
_live: "set[Lab]" = set()
_live_lock = threading.Lock()


def _teardown_all() -> None:
    """atexit: tear down every lab this process still has up."""
    with _live_lock:
        labs = list(_live)
    for lab in labs:
        lab.stop()


atexit.register(_teardown_all)


def leftovers(prefix: str = LAB_PREFIX) -> list[str]:
    """Namespaces with ``prefix`` that still exist (a test asserts there are none of its own)."""
    return [n for n in netns.list_netns() if n.startswith(prefix)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


class AgentRun(NamedTuple):
    """One ``check`` run of the agent inside the lab."""

    exit_code: int
    report: dict[str, Any]           # the JSON document (the schema's shape)
    text: str                        # the text output
    stderr: str


class Lab:
    """Builds the lab on :meth:`start` (or ``with``), tears it down on :meth:`stop`."""

    def __init__(self, private_dns: bool = False, workdir: str | None = None) -> None:
        """A lab with a unique name prefix; ``private_dns`` seeds the interface endpoint with it."""
        self.prefix = f"{LAB_PREFIX}{secrets.token_hex(3)}"
        self.names = {role: f"{self.prefix}-{role}" for role in ROLES}
        self.private_dns = private_dns
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="s3-route-agent-lab-"))
        self.created: list[str] = []
        self.processes: dict[str, subprocess.Popen[Any]] = {}
        self.info: dict[str, Any] = {}
        self.links: dict[str, set[str]] = {self.names[r]: set() for r in ROLES}
        self.gateway_route = True
        self._stopped = False
        self._old_sigterm: Any = None
        self.flow_client: dict[str, Any] = {}

    # ---- building ---------------------------------------------------------------------------

    def ns(self, role: str) -> str:
        """The namespace name of ``role``."""
        return self.names[role]

    def _sysctl(self, role: str, *settings: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.ns(role), "sysctl", "-q", "-w", *settings],
                       check=True, capture_output=True, timeout=10)

    def _veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        """A veth pair created inside namespace ``a`` with its peer in ``b``: never in the root."""
        ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", self.ns(b),
           netns=self.ns(a))
        self.links[self.ns(a)].add(a_if)
        self.links[self.ns(b)].add(b_if)
        ip("link", "set", a_if, "up", netns=self.ns(a))
        ip("link", "set", b_if, "up", netns=self.ns(b))

    def _addr(self, role: str, cidr: str, dev: str) -> None:
        ip("addr", "add", cidr, "dev", dev, netns=self.ns(role))

    def _route(self, role: str, *spec: str) -> None:
        ip("route", "replace", *spec, netns=self.ns(role))

    def _build(self) -> None:
        for role in ROLES:
            ip("netns", "add", self.ns(role))
            self.created.append(self.ns(role))
            # Before any link exists, so every interface inherits these: no IPv6 (the lab is
            # IPv4 only) and no reverse-path filter (the NAT re-injects packets from TUN).
            self._sysctl(role, "net.ipv6.conf.all.disable_ipv6=1",
                         "net.ipv6.conf.default.disable_ipv6=1",
                         "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
            ip("link", "set", "lo", "up", netns=self.ns(role))
        ip("link", "add", "vpc0", "type", "bridge", netns=self.ns("router"))
        self.links[self.ns("router")].add("vpc0")
        ip("link", "set", "vpc0", "up", netns=self.ns("router"))
        for role, addr in (("host", f"{HOST_IP}/{VPC_PREFIX}"), ("nat", f"{NAT_IP}/{VPC_PREFIX}"),
                           ("eni", f"{ENI_IP}/{VPC_PREFIX}"),
                           ("s3gw", f"{GATEWAY_NEXT_HOP}/{VPC_PREFIX}"),
                           ("proxy", f"{PROXY_IP}/{VPC_PREFIX}")):
            port = f"p-{role}"
            self._veth("router", port, role, "eth0")
            ip("link", "set", port, "master", "vpc0", netns=self.ns("router"))
            self._addr(role, addr, "eth0")
        self._veth("nat", "out-eu", "s3gw", "inet0")
        self._addr("nat", "10.201.0.1/30", "out-eu")
        self._addr("s3gw", "10.201.0.2/30", "inet0")
        self._veth("nat", "out-us", "s3us", "inet0")
        self._addr("nat", "10.202.0.1/30", "out-us")
        self._addr("s3us", "10.202.0.2/30", "inet0")
        self.links[self.ns("nat")].add("nat0")       # the TUN device s3_route_agent.devenv.lab.nat creates
        for address in S3_EU_ADDRESSES:
            self._addr("s3gw", f"{address}/32", "lo")
        for address in S3_US_ADDRESSES:
            self._addr("s3us", f"{address}/32", "lo")
        self._addr("host", f"{netns.IMDS_ADDRESS}/32", "lo")
        for role in ("host", "proxy"):
            for cidr in NAT_ROUTES:
                self._route(role, cidr, "via", NAT_IP)
            self._route(role, GATEWAY_ROUTE, "via", GATEWAY_NEXT_HOP)
        self._route("s3gw", f"{NAT_PUBLIC_IP}/32", "via", "10.201.0.1")
        self._route("s3us", f"{NAT_PUBLIC_IP}/32", "via", "10.202.0.1")
        self._sysctl("nat", "net.ipv4.ip_forward=1")

    def check_safety(self) -> None:
        """Refuse (LabSafetyError) unless the lab is isolated from the machine."""
        netns.assert_isolated(self.created, self.links, imds_netns=self.ns("host"))

    # ---- processes --------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for lab processes: fake credentials, no real AWS, the lab CA."""
        env = safe_environ()
        env.pop("NO_PROXY", None)
        env.pop("no_proxy", None)
        if self.info.get("ca_path"):
            env["AWS_CA_BUNDLE"] = self.info["ca_path"]
        env.update(extra)
        return env

    def _spawn(self, name: str, role: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace of ``role``; remembered by PID for teardown."""
        full = ["ip", "netns", "exec", self.ns(role), *argv]
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(full, stderr=log, start_new_session=True, env=self.env(),
                                cwd=_PROJECT_ROOT, **kwargs)
        log.close()
        self.processes[name] = proc
        return proc

    @staticmethod
    def _read_line(proc: subprocess.Popen[Any], timeout: float, what: str) -> str:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s")
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} exited at start (exit {proc.poll()})")
        return line.decode() if isinstance(line, bytes) else line

    def _start_processes(self) -> None:
        spec = {"workdir": str(self.workdir), "private_dns": self.private_dns,
                "netns": {r: self.ns(r) for r in ROLES}}
        spec_path = self.workdir / "labd.json"
        spec_path.write_text(json.dumps(spec))
        nat = self._spawn("nat", "nat", [
            sys.executable, "-m", "s3_route_agent.devenv.lab.nat", "--tun", "nat0", "--inside", "10.0.0.0/8",
            "--public", NAT_PUBLIC_IP, *sum((["--translate", c] for c in NAT_ROUTES), []),
            "--reinject", f"10.0.0.0/{VPC_PREFIX} dev eth0",
            "--reinject", "198.51.100.0/24 via 10.201.0.2",
            "--reinject", "203.0.113.0/24 via 10.202.0.2"], stdout=subprocess.PIPE)
        self._read_line(nat, 20, "lab NAT")
        labd = self._spawn("labd", "host", [sys.executable, "-m", "s3_route_agent.devenv.lab.labd", str(spec_path)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.info = json.loads(self._read_line(labd, 120, "lab AWS (labd)"))
        (self.workdir / "ids.json").write_text(json.dumps(self.info["ids"]))
        (self.workdir / "resolv.conf").write_text(
            "# s3-route-agent lab resolver (host namespace)\nnameserver 127.0.0.1\n"
            "options timeout:2 attempts:1\n")
        proxy = self._spawn("proxy", "proxy", [
            sys.executable, "-m", "s3_route_agent.devenv.lab.proxyd", "--listen", PROXY_IP, "--port",
            str(PROXY_PORT), "--ids", str(self.workdir / "ids.json")], stdout=subprocess.PIPE)
        self._read_line(proxy, 30, "lab proxy")

    def control(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command to the lab's AWS side and return its reply."""
        proc = self.processes["labd"]
        assert proc.stdin is not None
        proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        proc.stdin.flush()
        reply = json.loads(self._read_line(proc, 60, f"labd {cmd}"))
        if not reply.get("ok"):
            raise RuntimeError(f"labd {cmd}: {reply.get('error')}")
        return reply

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> "Lab":
        """Build the namespaces, check isolation (refuse if not), start the lab processes."""
        ok, why = netns.netns_available()
        if not ok:
            raise RuntimeError(f"lab unavailable: {why}")
        with _live_lock:
            _live.add(self)
        try:
            self._build()
            self.check_safety()          # before any lab process, hence before any lab packet
            self._start_processes()
            self.check_safety()          # the NAT's TUN device and routes are in place now
        except BaseException:
            self.stop()
            raise
        logger.info("lab %s up: %s", self.prefix, ", ".join(self.created))
        return self

    def stop(self) -> None:
        """Kill the lab's processes by PID, delete the lab's own namespaces and work files."""
        if self._stopped:
            return
        self._stopped = True
        labd = self.processes.get("labd")
        if labd is not None and labd.poll() is None and labd.stdin is not None:
            try:
                labd.stdin.write(b'{"cmd": "stop"}\n')
                labd.stdin.close()
                labd.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for name, proc in self.processes.items():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)   # its own session: pgid == its PID
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            logger.debug("lab process %s (pid %d) ended", name, proc.pid)
        for name in reversed(self.created):
            if not name.startswith(self.prefix):
                continue  # never anyone else's namespace
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        self.created = [n for n in self.created if n in netns.list_netns()]
        with _live_lock:
            _live.discard(self)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.created:
            logger.error("lab %s: namespaces left behind: %s", self.prefix, self.created)

    def pids(self) -> list[int]:
        """PIDs of the lab processes (for the nothing-left-behind check)."""
        return [p.pid for p in self.processes.values()]

    def alive_pids(self) -> list[int]:
        """Lab processes still running."""
        return [pid for pid in self.pids() if _pid_alive(pid)]

    def __enter__(self) -> "Lab":
        """Start the lab; SIGTERM turns into SystemExit so ``__exit__`` still tears down."""
        if threading.current_thread() is threading.main_thread():
            self._old_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_exit)
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Tear the lab down, whatever happened."""
        try:
            self.stop()
        finally:
            if self._old_sigterm is not None:
                signal.signal(signal.SIGTERM, self._old_sigterm)

    # ---- scenario helpers -------------------------------------------------------------------

    def remove_gateway_route(self) -> None:
        """Take the gateway-endpoint route away: in EC2 (moto) and in the lab's routing."""
        self.control("remove_gateway_route")
        for role in ("host", "proxy"):
            ip("route", "del", GATEWAY_ROUTE, netns=self.ns(role))
        self.gateway_route = False

    def restore_gateway_route(self) -> None:
        """Put the gateway-endpoint route back (EC2 and lab routing)."""
        self.control("restore_gateway_route")
        for role in ("host", "proxy"):
            self._route(role, GATEWAY_ROUTE, "via", GATEWAY_NEXT_HOP)
        self.gateway_route = True

    def start_flow_client(self, sends: Sequence[str]) -> dict[str, Any]:
        """Start a client in the host namespace that opens a TLS connection per ``ADDR:BYTES``
        (to port 443 of the lab's S3), sends BYTES bytes in an unfinished PUT and holds the
        connection (s3_route_agent.devenv.flowclient); returns what it reports (its pid, each
        connection). :meth:`stop_flow_client` (or teardown) ends it."""
        argv = [sys.executable, "-m", "s3_route_agent.devenv.flowclient", "send", "--bind",
                HOST_IP, "--tls", "--ca", self.info["ca_path"],
                *(f"{s.rsplit(':', 1)[0]}:443:{s.rsplit(':', 1)[1]}" for s in sends)]
        proc = self._spawn("flowclient", "host", argv, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE)
        self.flow_client = json.loads(self._read_line(proc, 60, "lab flow client"))
        return self.flow_client

    def stop_flow_client(self) -> None:
        """End the flow client (closing its stdin makes it close its connections and exit)."""
        proc = self.processes.pop("flowclient", None)
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)     # its own session: pgid == its PID
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def set_block_public_access(self, mode: str) -> None:
        """VPC Block Public Access: in EC2 (``mode``) and in the lab, where the NAT gateway drops
        every packet while the mode is ``block-bidirectional`` (the lab has no internet gateway
        of its own: every public path crosses the NAT)."""
        self.control("set_block_public_access", mode=mode)
        nat = self.processes["nat"]
        os.kill(nat.pid, signal.SIGUSR1 if mode == "block-bidirectional" else signal.SIGUSR2)

    def set_private_dns(self, enabled: bool) -> None:
        """Switch the interface endpoint's private DNS (EC2 attribute and the lab resolver)."""
        self.control("set_private_dns", value=enabled)

    @property
    def ids(self) -> dict[str, Any]:
        """The seeded world's ids (WorldIds.to_dict())."""
        return self.info["ids"]

    def interface_host(self, bucket: str = DEMO_BUCKET) -> str:
        """``bucket.bucket.vpce-….s3.eu-west-1.vpce.amazonaws.com`` of this lab's endpoint."""
        return f"{bucket}.bucket.{self.ids['interface_endpoint_dns_names'][0].removeprefix('*.')}"

    def agent_config(self, name: str, targets: list[dict[str, Any]], *,
                     transfer: bool = True, probe: bool = True, oracle: bool = True,
                     size_bytes: int = 64 * 1024, transfer_timeout: float = 20) -> Path:
        """Write a config for the agent in the host namespace; returns its path.

        ``oracle`` points the path oracle at the lab bucket, whose oracle keys labd created and
        whose S3 namespaces answer them as S3 would (s3_route_agent.devenv.lab.labd).
        """
        state = self.workdir / f"state-{name}"
        state.mkdir(exist_ok=True)
        config = {
            "aws": {"region": world.REGION, "endpoint_url": self.info["ec2_endpoint"],
                    "connect_timeout_seconds": 3, "read_timeout_seconds": 10, "max_attempts": 1},
            "imds": {"endpoint": f"http://{netns.IMDS_ADDRESS}", "timeout_seconds": 2},
            "dns": {"timeout_seconds": 3},
            "s3_ranges": {"file": str(world.IP_RANGES_PATH)},
            "targets": targets,
            "transfer": {"enabled": transfer, "bucket": DEMO_BUCKET, "size_bytes": size_bytes,
                         "timeout_seconds": transfer_timeout},
            "probe": {"enabled": probe, "max_hops": 6, "timeout_seconds": 1.0},
            "state_dir": str(state),
        }
        if oracle:
            config["oracle"] = {"bucket": DEMO_BUCKET, "prefix": "oracle/"}
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def run_in_host(self, argv: Sequence[str], env: dict[str, str] | None = None,
                    timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the host namespace with the lab resolv.conf bind-mounted.

        ``unshare --mount`` gives the command a private mount namespace, so the bind mount of
        the lab resolv.conf over /etc/resolv.conf never touches the machine's /etc.
        """
        full = ["ip", "netns", "exec", self.ns("host"), "unshare", "--mount",
                "--propagation", "private", "--", "sh", "-c",
                'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                str(self.workdir / "resolv.conf"), *argv]
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, env=env or self.env(), cwd=_PROJECT_ROOT)
        key = f"run-{proc.pid}"
        self.processes[key] = proc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        finally:
            self.processes.pop(key, None)
        return subprocess.CompletedProcess(full, proc.returncode, out, err)

    def run_agent(self, config_path: Path, *, refresh: bool = False,
                  env: dict[str, str] | None = None) -> AgentRun:
        """``s3-route-agent check`` in the host namespace: its exit code, its JSON report (from
        ``--report-file``), its text output (what a person reads) and stderr."""
        report_path = self.workdir / f"report-{secrets.token_hex(4)}.json"
        argv = [sys.executable, "-m", "s3_route_agent", "check", "--config", str(config_path),
                "--format", "text", "--report-file", str(report_path)] + (
                    ["--refresh"] if refresh else [])
        done = self.run_in_host(argv, env=env)
        try:
            report = json.loads(report_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise RuntimeError(f"agent wrote no report (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}") from None
        finally:
            report_path.unlink(missing_ok=True)
        return AgentRun(done.returncode, report, done.stdout, done.stderr)


def _sigterm_to_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
