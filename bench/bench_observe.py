"""Cost of one observation of the host's S3 traffic with 10, 1,000 and 10,000 open TCP sockets.

    python bench/bench_observe.py [--sizes 10,1000,10000] [--repeat 100] [--s3-prefixes 600]

One observation is what each check and daemon cycle adds (agent/runs/observe.py): the sock_diag
dump filtered by the kernel to the S3 networks, inode -> process for the S3 sockets, the
engine's judgement (path of every flow, bytes counted once, totals, NAT estimate, names) and the
state written to state_dir. The S3 networks are the address 127.0.0.2 (standing in for S3
us-east-1, public via a NAT gateway) plus ``--s3-prefixes`` synthetic prefixes spread as S3's
are, that match no socket here: as many as the S3 list of ip-ranges.json gives the agent.

As root it creates a throwaway network namespace (``s3rao-bench-PID``), brings up its loopback
and re-runs itself inside, so the counts are exactly the sockets made here; the namespace is
deleted afterwards, also on failure. Otherwise it refuses (other sockets of the host would
count). A separate holder process opens N sockets as N/2 loopback connections (a quarter on
::1), of which N/200 (at least 1), spread over its fd table, go to 127.0.0.2 after sending 1,000
bytes. Traffic is loopback only; the holder is ended by its PID.

Rows (median / p95 wall milliseconds, CPU median in parentheses, over ``--repeat`` runs):

  observation: steady      a cycle without a new S3 connection (the caches warm; no byte moved,
                           so the state file is not written again: add the write row when
                           bytes move)
  observation: one new     a cycle in which one S3 connection is new (its fd must be found)
  observation: cold        the first cycle of a process (a new observer, no state)
  look: dump + map         the collector alone (HostObserver.look), steady
  judge                    the engine's judgement of the flows (no I/O)
  state write (fsync)      the state file replaced in state_dir (written, fsync'd, renamed)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from s3_route_agent.collectors.connections import (HostObserver, ObservedStateFile,
                                                   TrafficCollectors)
from s3_route_agent.engine.model import (Expect, Facts, Identity, Inventory, Route, RouteTable,
                                         RouteTargetKind, S3Range)
from s3_route_agent.engine.observed import (ObservedState, ObserveRules, S3Membership,
                                            judge_observation)
from s3_route_agent.engine.routes import S3RangeIndex

S3_STAND_IN = "127.0.0.2"


def facts_for(prefixes: int) -> Facts:
    """A VPC whose only route to the S3 stand-in is a NAT gateway, and the S3 ranges."""
    inventory = Inventory("eu-west-1", "vpc-b", "subnet-b", RouteTable(
        "rtb-b", "vpc-b", "explicit", (Route("0.0.0.0/0", "nat-b", RouteTargetKind.NAT_GATEWAY),)),
        (), (), ())
    # Spread like S3's own ranges: two thirds IPv4 /24s over the first octets AWS announces,
    # one third IPv6 /48s under 2600:1f00::/24; none adjacent, none near the loopback sockets.
    octets = (3, 13, 15, 16, 18, 34, 35, 44, 52, 54, 63, 99, 108, 130, 150, 176, 184, 205)
    v4 = [f"{octets[i % len(octets)]}.{(i * 91) % 256}.{(i * 13) % 256}.0/24"
          for i in range(prefixes - prefixes // 3)]
    v6 = [f"2600:1f{i % 256:02x}:{i:x}::/48" for i in range(prefixes // 3)]
    ranges = [S3Range(f"{S3_STAND_IN}/32", "us-east-1")]
    ranges += [S3Range(cidr, "us-east-1") for cidr in dict.fromkeys(v4 + v6)]
    return Facts(identity=Identity("eu-west-1", "vpc-b", "subnet-b", source="config"),
                 inventory=inventory, s3_ranges=tuple(ranges))


def raise_nofile(need: int) -> None:
    """Raise RLIMIT_NOFILE to ``need`` (root may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard < need and os.geteuid() == 0:
        hard = need
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def hold(n_sockets: int) -> None:
    """The holder: open the connections, report their inodes, then wait for stdin to close."""
    pairs = max(1, n_sockets // 2)
    interesting = max(1, n_sockets // 200)
    raise_nofile(2 * pairs + 64)
    plain4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    plain4.bind(("127.0.0.1", 0))
    plain4.listen(4096)
    s3 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s3.bind((S3_STAND_IN, 0))
    s3.listen(4096)
    plain6 = None
    if pairs >= 4:
        plain6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        plain6.bind(("::1", 0))
        plain6.listen(4096)
    keep = []
    wanted = []
    step = max(1, pairs // interesting)
    for i in range(pairs):
        if i % step == 0 and len(wanted) < interesting:
            listener, family, source = s3, socket.AF_INET, ("127.0.0.1", 0)
        elif i % 4 == 1 and plain6 is not None:
            listener, family, source = plain6, socket.AF_INET6, None
        else:
            listener, family, source = plain4, socket.AF_INET, None
        client = socket.socket(family, socket.SOCK_STREAM)
        if source:
            client.bind(source)
        client.connect(listener.getsockname())
        accepted, _ = listener.accept()
        if listener is s3:
            client.sendall(b"x" * 1000)
            accepted.recv(1000)
            wanted.append(os.fstat(client.fileno()).st_ino)
        keep += [client, accepted]
    sys.stdout.write(json.dumps({"pid": os.getpid(), "sockets": len(keep),
                                 "interesting": wanted}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()


def stats(wall: list[float], cpu: list[float]) -> dict[str, float]:
    """Median and p95 wall time, median CPU time, in milliseconds."""
    ms = sorted(x * 1e3 for x in wall)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(p95, 3),
            "cpu_median_ms": round(statistics.median(cpu) * 1e3, 3), "runs": len(ms)}


def time_many(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, dict[str, float]]:
    """Time the variants round-robin, so that a change in the machine's load hits all alike."""
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeat):
        for key, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    return {k: stats(wall[k], cpu[k]) for k in fns}


ROWS = ["observation: steady", "observation: one new", "observation: cold", "look: dump + map",
        "judge", "state write (fsync)"]


def bench_size(n: int, repeat: int, prefixes: int, workdir: str) -> dict[str, Any]:
    """Every row for ``n`` sockets held by a separate process."""
    raise_nofile(n + 256)
    holder = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--hold", str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        if not line:
            raise RuntimeError(f"holder for {n} sockets failed (exit {holder.wait()})")
        info = json.loads(line)
        wanted = set(info["interesting"])
        facts = facts_for(prefixes)
        membership = S3Membership(facts, S3RangeIndex(facts.s3_ranges))
        networks = membership.networks()
        rules = ObserveRules(Expect.PRIVATE)
        store = ObservedStateFile(tempfile.mkdtemp(dir=workdir))
        observer = HostObserver()
        traffic = TrafficCollectors(observer=observer, state_file=store)
        kept = {"state": ObservedState(since=time.time())}

        def observation(obs: HostObserver = observer, fresh: bool = False) -> None:
            seen = obs.look(networks)
            state = ObservedState(since=time.time()) if fresh else kept["state"]
            section, state = judge_observation(seen, facts, membership, state, rules)
            if fresh:   # a first cycle: its own state, written
                TrafficCollectors(observer=obs, state_file=store).keep_state(state)
            else:       # as the agent keeps it: written when it changed
                kept["state"] = state
                traffic.keep_state(state)
            assert {f.process.pid for f in section.flows if f.process} == {info["pid"]}, \
                (len(section.flows), seen.notes)

        observation()
        first = observer.look(networks)
        assert {s.inode for s in first.sockets} == wanted and not first.problems, first.problems
        order = itertools.cycle(sorted(wanted))

        def one_new() -> None:
            observer.mapper._cache.pop(next(order), None)   # as if this socket were new
            observation()

        def cold() -> None:
            fresh = HostObserver()
            try:
                observation(fresh, fresh=True)
            finally:
                fresh.close()

        def look() -> None:
            observer.look(networks)

        def judge() -> None:
            judge_observation(first, facts, membership, kept["state"], rules)

        def write() -> None:
            store.store(kept["state"])

        rep = repeat if n <= 1000 else max(20, repeat // 4)
        result: dict[str, Any] = {"holder_sockets": info["sockets"], "s3_sockets": len(wanted),
                                  "filter_networks": len(networks),
                                  "processes": sum(1 for p in os.listdir("/proc") if p.isdigit())}
        result.update(time_many({"observation: steady": observation,
                                 "observation: one new": one_new, "observation: cold": cold,
                                 "look: dump + map": look, "judge": judge,
                                 "state write (fsync)": write}, rep))
        observer.close()
        return result
    finally:
        holder.kill()      # by PID
        holder.wait()


def inner(sizes: list[int], repeat: int, prefixes: int, out: str | None) -> None:
    """Run every size here (inside the bench namespace) and print the table."""
    results: dict[str, Any] = {"kernel": os.uname().release, "python": sys.version.split()[0],
                               "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
                               "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="s3-route-agent-bench-") as workdir:
        for n in sizes:
            results["sizes"][str(n)] = bench_size(n, repeat, prefixes, workdir)
    results["loadavg_after"] = os.getloadavg()
    print(f"kernel {results['kernel']}, Python {results['python']}, {results['cpus']} CPUs, "
          f"in a private network namespace; load average {results['loadavg_before'][0]:.2f} -> "
          f"{results['loadavg_after'][0]:.2f}; S3 filter of "
          f"{results['sizes'][str(sizes[0])]['filter_networks']} networks")
    print(f"{'ms: median / p95 (cpu median)':28}" + "".join(f"{n:>24,}" for n in sizes))
    for key in ("holder_sockets", "s3_sockets", "processes"):
        print(f"{key:28}" + "".join(f"{results['sizes'][str(n)][key]:>24}" for n in sizes))
    for row in ROWS:
        cells = ""
        for n in sizes:
            r = results["sizes"][str(n)][row]
            cells += f"{r['median_ms']:>9.2f} /{r['p95_ms']:>6.2f} ({r['cpu_median_ms']:5.2f})"
        print(f"{row:28}{cells}")
    if out:
        with open(out, "w") as handle:
            json.dump(results, handle, indent=1)
            handle.write("\n")


def main() -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--s3-prefixes", type=int, default=600)
    parser.add_argument("--json")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold is not None:
        hold(args.hold)
        return 0
    sizes = [int(x) for x in args.sizes.split(",")]
    out = os.path.abspath(args.json) if args.json else None
    if args.inner:
        inner(sizes, args.repeat, args.s3_prefixes, out)
        return 0
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("bench_observe: needs root and ip(8) for its own network namespace",
              file=sys.stderr)
        return 77
    namespace = f"s3rao-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"],
                       check=True)
        cmd = ["ip", "netns", "exec", namespace, sys.executable, os.path.abspath(__file__),
               "--inner", "--sizes", args.sizes, "--repeat", str(args.repeat),
               "--s3-prefixes", str(args.s3_prefixes)] + (["--json", out] if out else [])
        return subprocess.run(cmd, timeout=3600).returncode
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


if __name__ == "__main__":
    sys.exit(main())
