"""Benchmark (not a test): ``s3-route-agent run`` through a scripted sequence of faults.

The daemon runs as a subprocess against the local environment (moto, DNS and IMDS on 127.0.0.1;
test transfers on, sent to the local moto server) with every sink a real one: a JSON Lines file
(the witness of what was produced, on an ordinary disk) and CloudWatch Logs (moto, through a
proxy this script controls; the spool in ``state_dir``). The script then breaks things as an
operator would:

    baseline           1 min   everything up
    EC2 down           5 min   the AWS API endpoint closes every connection
    CloudWatch hanging 5 min   CloudWatch Logs accepts connections and never answers
    DNS failing        2 min   the resolver never answers
    disk full          2 min   state_dir (a small tmpfs: the spool and the caches) is full
    restart                    SIGTERM, then a new daemon
    crash                      SIGKILL while a canary is in flight, then a new daemon
    recovery                   everything up until the spool is empty and the canary sweep
                               has run past its age threshold, then SIGTERM

and prints what happened to the reports: produced (lines in the JSON Lines file), delivered to
CloudWatch Logs, lost (produced, never delivered), duplicated (delivered more than once), whether
they arrived in order, the longest cycle and the longest gap between two reports of one daemon,
the longest stop (SIGTERM to exit), and the canaries left in the bucket.

**Time compression.** ``--compress C`` (default 30) divides every phase length and every
time-based setting by C: a "5 min" phase runs 300/C s (10 s), the inventory TTL is 900/C s, the
CloudWatch backoff cap 300/C s and the canary age threshold 3600/C s (at least 10 s, the
setting's minimum). The cycle interval is ``--interval`` (default 1 s), so each phase still spans
many cycles. ``--compress 1`` runs the script at real length (about an hour and a half).

The test transfers go to the local moto server on 127.0.0.1 (the local names resolve to
documentation addresses that must never receive traffic), so the reconciliation sees a peer the
verdict did not predict and drops the inventory cache after each transfer: every cycle fetches
the inventory, and a cycle during the EC2 outage has no cached facts to fall back on (UNKNOWN,
still a report, still delivered). Two targets, each with a transfer, keep the cycles short.

Needs root for the full-disk phase (it mounts a tmpfs and unmounts it at the end); without root
that phase is skipped and says so.

    .venv/bin/python bench/bench_faults.py [--compress 30] [--interval 1]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s3_route_agent.aws import make_client  # noqa: E402
from s3_route_agent.sinks.cloudwatch_logs import encode_record  # noqa: E402
from s3_route_agent.devenv.faults import FaultyTcpEndpoint, fill_filesystem  # noqa: E402
from s3_route_agent.devenv.localenv.environment import (DEMO_BUCKET, LocalEnvironment,  # noqa: E402
                                                        demo_targets, safe_environ)

HARNESS = ROOT / "tests" / "local_transfer_agent.py"
GROUP, STREAM = "/s3-route-agent/bench-faults", "bench-host"


class UdpProxy:
    """A UDP forwarder on 127.0.0.1 to a DNS server; ``failing`` drops every query (a resolver
    that never answers)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.failing = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, client = self.sock.recvfrom(65535)
            except OSError:
                return
            if not self.failing:
                threading.Thread(target=self._relay, args=(query, client), daemon=True).start()

    def _relay(self, query: bytes, client: Any) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(2)
            try:
                up.sendto(query, self.upstream)
                answer = up.recv(65535)
                self.sock.sendto(answer, client)
            except OSError:
                pass

    def close(self) -> None:
        """Stop."""
        self.sock.close()


@contextlib.contextmanager
def small_tmpfs(size: str) -> Iterator[Path | None]:
    """A tmpfs mounted on a temporary directory (root only; None otherwise), unmounted after."""
    where = Path(tempfile.mkdtemp(prefix="s3ra-bench-state-"))
    mounted = False
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700",
                                  "tmpfs", str(where)], capture_output=True).returncode == 0
    try:
        yield where if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


class Daemons:
    """Starts and stops the daemon subprocess, timing each stop."""

    def __init__(self, config: Path, moto_url: str, log: Path) -> None:
        self.config, self.moto_url, self.log = config, moto_url, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.stops: list[float] = []
        self.starts = 0

    def start(self) -> None:
        environ = safe_environ()
        environ["PYTHONPATH"] = str(ROOT)
        environ["S3_ROUTE_AGENT_TEST_TRANSFER_ENDPOINT"] = self.moto_url
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(HARNESS), "--log-level", "INFO", "run", "--config",
                 str(self.config)], cwd=ROOT, env=environ, stdout=subprocess.DEVNULL,
                stderr=log)
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> float:
        """SIGTERM and wait; the time it took (the process is killed after 30 s)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()        # by PID: only the process this script started
            self.proc.wait()
        took = time.monotonic() - started
        self.stops.append(took)
        return took

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def reports(path: Path) -> list[dict[str, Any]]:
    """Every report in the JSON Lines file (and its rotations), oldest first."""
    out: list[dict[str, Any]] = []
    for part in sorted(path.parent.glob(path.name + "*"), reverse=True):
        out += [json.loads(line) for line in part.read_text().splitlines() if line.strip()]
    return out


def delivered(logs: Any) -> list[str]:
    """run_ids in the CloudWatch Logs stream, in the stream's order."""
    try:
        out: list[str] = []
        token = None
        while True:
            kwargs = {"logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            page = logs.get_log_events(**kwargs)
            out += [json.loads(e["message"])["run_id"] for e in page["events"]]
            if not page["events"] or page.get("nextForwardToken") == token:
                return out
            token = page.get("nextForwardToken")
    except logs.exceptions.ResourceNotFoundException:
        return []


def canaries(s3: Any, prefix: str) -> list[str]:
    """Keys under the canary prefix."""
    return [o["Key"] for o in s3.list_objects_v2(Bucket=DEMO_BUCKET, Prefix=prefix)
            .get("Contents", [])]


def report_time(report: dict[str, Any]) -> float:
    """A report's start time (epoch seconds)."""
    return datetime.datetime.fromisoformat(report["time"].replace("Z", "+00:00")).timestamp()


def main() -> int:
    """Run the fault sequence and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compress", type=float, default=30.0,
                        help="divide every phase length and time setting by this (default 30)")
    parser.add_argument("--interval", type=float, default=1.0, help="cycle interval (s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    c = args.compress
    os.environ.update(safe_environ())
    work = Path(tempfile.mkdtemp(prefix="s3ra-bench-faults-"))
    prefix = f"s3-route-agent/canary/bench-{uuid.uuid4().hex[:8]}/"
    stale = max(10.0, 3600.0 / c)
    with LocalEnvironment() as env, small_tmpfs("8m") as disk:
        state = disk or work / "state"
        ec2, cw, dns = FaultyTcpEndpoint(env.moto.port), FaultyTcpEndpoint(env.moto.port), UdpProxy(env.dns.port)
        out = work / "reports.jsonl"
        # Two targets, each with a test transfer (every target with a bucket gets one).
        targets = [t for t in demo_targets(env.ids) if t["name"] in ("bucket-regional",
                                                                      "legacy-global")]
        config = env.write_config(
            work / "config.yaml", targets,
            aws={"endpoint_url": ec2.url, "max_attempts": 2, "connect_timeout_seconds": 2,
                 "read_timeout_seconds": 5},
            dns={"nameservers": ["127.0.0.1"], "port": dns.port, "timeout_seconds": 1},
            state_dir=str(state),
            inventory={"ttl_seconds": max(1.0, 900.0 / c), "ttl_jitter_fraction": 0},
            daemon={"interval_seconds": args.interval, "jitter_seconds": 0,
                    "step_timeout_seconds": 10, "cycle_timeout_seconds": 60},
            transfer={"enabled": True, "bucket": DEMO_BUCKET, "prefix": prefix,
                      "size_bytes": 4096, "timeout_seconds": 5, "stale_canary_seconds": stale},
            outputs={"file": {"path": str(out), "max_bytes": 256 * 1024 * 1024},
                     "cloudwatch_logs": {"enabled": True, "endpoint_url": cw.url,
                                         "log_group": GROUP, "log_stream": STREAM,
                                         "timeout_seconds": 5,
                                         "retry_max_seconds": max(1.0, 300.0 / c)}})
        logs = make_client("logs", "eu-west-1", env.moto.endpoint_url)
        s3 = make_client("s3", "eu-west-1", env.moto.endpoint_url)
        daemons = Daemons(config, env.moto.endpoint_url, work / "daemon.log")
        segments: list[int] = []          # report counts at each daemon start
        rows: list[tuple[str, float, int, float, dict[str, int]]] = []

        def run_phase(name: str, seconds: float, min_reports: int = 2) -> None:
            """Hold the current faults for ``seconds`` and until ``min_reports`` new reports
            (cycles are slower than the interval on a busy machine; at most 60 s more)."""
            before = len(reports(out))
            started = time.monotonic()
            while (time.monotonic() - started < seconds
                   or (len(reports(out)) - before < min_reports
                       and time.monotonic() - started < seconds + 60)):
                if not daemons.alive():
                    raise SystemExit(f"the daemon died during {name}: see {daemons.log}")
                time.sleep(0.1)
            made = reports(out)[before:]
            statuses: dict[str, int] = {}
            for report in made:
                statuses[report["status"]] = statuses.get(report["status"], 0) + 1
            longest = max((r["duration_ms"] for r in made), default=0.0) / 1000
            rows.append((name, time.monotonic() - started, len(made), longest, statuses))

        segments.append(0)
        daemons.start()
        run_phase("baseline", 60 / c)
        ec2.set_mode("refuse")
        run_phase("EC2 down", 300 / c)
        ec2.set_mode("up")
        cw.set_mode("hang")
        run_phase("CloudWatch hanging", 300 / c)
        cw.set_mode("up")
        dns.failing = True
        run_phase("DNS failing", 120 / c)
        dns.failing = False
        if disk is not None:
            filler = fill_filesystem(disk)
            run_phase("disk full", 120 / c)
            filler.unlink()
        else:
            rows.append(("disk full: skipped (needs root to mount a tmpfs)", 0.0, 0, 0.0, {}))
        # Restart: SIGTERM (timed), a new daemon.
        took = daemons.stop()
        segments.append(len(reports(out)))
        daemons.start()
        run_phase(f"restart (stopped in {took:.1f} s)", 30 / c, min_reports=1)
        # Crash: SIGKILL while a canary is in flight, a new daemon.
        deadline = time.monotonic() + 60
        while not canaries(s3, prefix) and time.monotonic() < deadline:
            time.sleep(0.005)
        in_flight = len(canaries(s3, prefix))
        daemons.kill()
        left_by_crash = len(canaries(s3, prefix))
        segments.append(len(reports(out)))
        daemons.start()
        # Recovery: until the spool is empty and the sweep has passed the canary age threshold.
        recovery_started = time.monotonic()
        run_phase(f"crash (SIGKILL, {left_by_crash} canary left), recovery", stale + 30 / c)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if set(r["run_id"] for r in reports(out)) <= set(delivered(logs)) and not canaries(
                    s3, prefix):
                break
            time.sleep(0.5)
        recovery = time.monotonic() - recovery_started
        daemons.stop()
        produced = reports(out)
        got = delivered(logs)
        left = canaries(s3, prefix)
        try:
            spool_state = json.loads((state / "spool" / "cloudwatch-logs" / "state.json")
                                     .read_text())
        except (OSError, ValueError):
            spool_state = {}
        ec2.close()
        cw.close()
        dns.close()

    ids = [r["run_id"] for r in produced]
    unique = list(dict.fromkeys(got))
    lost = [i for i in ids if i not in set(got)]
    duplicated = len(got) - len(unique)
    in_order = [i for i in unique if i in set(ids)] == [i for i in ids if i in set(unique)]
    longest_cycle = max(r["duration_ms"] for r in produced) / 1000
    gaps = []
    bounds = segments + [len(produced)]
    for start, end in zip(bounds, bounds[1:]):
        times = [report_time(r) for r in produced[start:end]]
        gaps += [b - a for a, b in zip(times, times[1:])]
    load = os.getloadavg()
    print(f"fault sequence, time compressed {c:g}x (a 5 min phase runs {300 / c:g} s), "
          f"cycle interval {args.interval:g} s, canary age threshold {stale:g} s; "
          f"load average {load[0]:.2f}")
    print(f"  {'phase':<44} {'seconds':>7} {'reports':>7} {'longest cycle':>13}  statuses")
    for name, seconds, count, longest, statuses in rows:
        print(f"  {name:<44} {seconds:7.1f} {count:7d} {longest:11.1f} s  "
              f"{', '.join(f'{k} {v}' for k, v in sorted(statuses.items())) or '-'}")
    print(f"reports produced            {len(ids)}")
    print(f"reports delivered           {len(set(ids) & set(got))} (CloudWatch Logs events: "
          f"{len(got)})")
    print(f"reports lost                {len(lost)}")
    print(f"reports duplicated          {duplicated}")
    print(f"delivered in order          {'yes' if in_order else 'NO'}")
    print(f"spool counters              dropped {spool_state.get('dropped', 0)}, corrupt "
          f"{spool_state.get('corrupt', 0)}")
    size = sum(len(json.dumps(r, separators=(",", ":"))) for r in produced) / len(produced)
    record = sum(len(encode_record({"t": 0, "s": STREAM, "m": json.dumps(r)}))
                 for r in produced) / len(produced)
    held = 50 * 1024 * 1024 / record
    print(f"report size                 {size / 1024:.1f} KiB on average ({record / 1024:.1f} KiB "
          f"as a spool record): the default spool (50 MiB) holds about {held:,.0f} reports, "
          f"{held * 300 / 86400:.0f} days at 300 s")
    print(f"longest cycle               {longest_cycle:.1f} s")
    print(f"longest gap between reports {max(gaps):.1f} s (within one daemon; interval "
          f"{args.interval:g} s)")
    print(f"longest stop (SIGTERM)      {max(daemons.stops):.1f} s ({len(daemons.stops)} stops)")
    print(f"canaries                    {in_flight} in flight at the crash, {left_by_crash} left "
          f"by it, {len(left)} left at the end (recovery {recovery:.0f} s)")
    if args.keep:
        print(f"work directory              {work}")
    else:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not lost and not left else 1


if __name__ == "__main__":
    sys.exit(main())
