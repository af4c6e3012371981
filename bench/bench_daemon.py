"""Benchmark (not a test): ``s3-route-agent run`` for N fast cycles against the local environment.

Prints CPU seconds per cycle, RSS and open file descriptors near the start and at the end, and
EC2 calls per host-hour in steady state. The daemon runs as a subprocess and is measured from
outside through /proc.

EC2 calls per host-hour in steady state: the calls of each kind of cycle are measured (a cached
cycle, a route check, a TTL refresh of a cached inventory), then a host's schedule at the
default settings is simulated over 1,000 hours (a cycle every 300 s, a route check every 900 s,
a full refresh when the inventory's life runs out: TTL 14,400 s shortened by a random part of up
to 10 %). Fast cycles cannot keep the production ratios in wall time, so the run uses a short
TTL (``--ttl``) and route-check interval (``--route-check``) to see both happen. The cold cycle
(an empty cache) is shown apart: it happens once per host start. ``--ttl 3600 --route-check 0``
measures the CPU of cached cycles alone.

    .venv/bin/python bench/bench_daemon.py [--cycles 1000] [--interval 0.001]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ  # noqa: E402

PROD_INTERVAL = 300.0
PROD_TTL = 14400.0
PROD_ROUTE_CHECK = 900.0
PROD_JITTER = 0.1


def simulated_calls_per_hour(per_cached: float, per_check: float, per_refresh: float,
                             hours: float = 1000.0, seed: int = 13) -> float:
    """EC2 calls per host-hour of a host on the default schedule (see the module docstring)."""
    import random
    rng = random.Random(seed)
    now, calls = 0.0, 0.0
    fetched = checked = 0.0
    life = PROD_TTL * (1 - rng.uniform(0, PROD_JITTER))
    while now < hours * 3600:
        now += PROD_INTERVAL
        if now - fetched >= life:
            calls += per_refresh
            fetched = checked = now
            life = PROD_TTL * (1 - rng.uniform(0, PROD_JITTER))
        elif now - checked >= PROD_ROUTE_CHECK:
            calls += per_check
            checked = now
        else:
            calls += per_cached
    return calls / hours


def _proc(pid: int) -> dict[str, float]:
    """CPU seconds, RSS (KiB) and open fds of ``pid`` from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (proc(5))
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
               .splitlines() if line.startswith("VmRSS:"))
    return {"cpu": cpu, "rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def _count(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.001)
    parser.add_argument("--ttl", type=float, default=2.0,
                        help="inventory TTL of the run (short, so that refreshes happen)")
    parser.add_argument("--route-check", type=float, default=0.5,
                        help="route-check interval of the run (0: none)")
    args = parser.parse_args()
    os.environ.update(safe_environ())
    ttl = args.ttl
    with LocalEnvironment() as env, tempfile.TemporaryDirectory() as tmp:
        reports = Path(tmp) / "reports.jsonl"
        config = env.write_config(
            Path(tmp) / "config.yaml",
            inventory={"ttl_seconds": ttl, "ttl_jitter_fraction": 0,
                       "route_check_seconds": args.route_check},
            daemon={"interval_seconds": args.interval, "jitter_seconds": 0},
            # Room for every report: the count of finished cycles is read from these files.
            outputs={"file": {"path": str(reports), "max_bytes": 64 * 1024 * 1024,
                              "backups": 4}})
        environ = safe_environ()
        environ["PYTHONPATH"] = str(ROOT)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "s3_route_agent", "run", "--config", str(config),
                                 "--max-cycles", str(args.cycles)], cwd=ROOT, env=environ,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        warm = min(10, args.cycles // 2)
        first = last = None
        first_at = last_at = 0
        while proc.poll() is None:
            done = _count(reports) + sum(_count(p) for p in Path(tmp).glob("reports.jsonl.*"))
            if first is None and done >= warm:
                first, first_at = _proc(proc.pid), done
            if done >= args.cycles - 1 and last is None:
                last, last_at = _proc(proc.pid), done
            time.sleep(0.01)
        err = proc.stderr.read() if proc.stderr else ""
        wall = time.monotonic() - started
        if proc.returncode != 0 or first is None or last is None:
            print(f"daemon exited {proc.returncode}: {err[-2000:]}", file=sys.stderr)
            return 1
        lines = []
        for path in sorted(Path(tmp).glob("reports.jsonl*"), reverse=True):
            lines += path.read_text().splitlines()
        docs = [json.loads(x) for x in lines]
    calls = [d["facts"]["ec2_calls"] for d in docs]
    # The first report is the cold cycle; later "api" cycles are TTL refreshes of a cached inventory.
    refreshes = [d["facts"]["ec2_calls"] for d in docs[1:]
                 if d["facts"]["inventory_source"] == "api"]
    cache_calls = [d["facts"]["ec2_calls"] for d in docs[1:]
                   if d["facts"]["inventory_source"] == "cache"]
    checks = [c for c in cache_calls if c > 0]      # route checks (one DescribeRouteTables)
    cached = [c for c in cache_calls if c == 0]
    per_refresh = sum(refreshes) / len(refreshes) if refreshes else float(calls[0])
    per_check = sum(checks) / len(checks) if checks else 1.0
    per_hour = simulated_calls_per_hour(0.0, per_check, per_refresh)
    statuses = {s: sum(1 for d in docs if d["status"] == s) for s in {d["status"] for d in docs}}
    print(f"cycles completed            {len(docs)} in {wall:.1f} s wall "
          f"(interval {args.interval:g} s, inventory TTL {ttl:g} s)")
    print(f"report statuses             {statuses}")
    print(f"CPU seconds per cycle       {(last['cpu'] - first['cpu']) / (last_at - first_at):.4f}"
          f" (cycles {first_at}..{last_at})")
    print(f"RSS start / end             {first['rss_kib'] / 1024:.1f} MiB / "
          f"{last['rss_kib'] / 1024:.1f} MiB")
    print(f"open fds start / end        {first['fds']} / {last['fds']}")
    print(f"EC2 calls, cold cycle       {calls[0]} (empty cache: once per host start)")
    print(f"EC2 calls per TTL refresh   {per_refresh:.1f} ({len(refreshes)} refresh(es))")
    print(f"EC2 calls per route check   {per_check:.1f} ({len(checks)} check(s))")
    print(f"EC2 calls per cached cycle  0 ({len(cached)} cycles)")
    if refreshes and checks:
        print(f"EC2 calls per host-hour     {per_hour:.1f} (defaults simulated: a cycle per 300 s, "
              f"a route check per 900 s, a refresh per TTL 14,400 s less up to 10 %)")
    else:
        print("EC2 calls per host-hour     not measured (no refresh or route check in this run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
