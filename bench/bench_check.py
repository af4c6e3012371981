"""Benchmark (not a test): wall time and EC2 calls of `check` against the local environment,
cold (empty inventory cache), warm (cache within its TTL) and refresh (cache present, refreshed:
the prefix-list entries and endpoint ENIs are reused when unchanged).

Run: .venv/bin/python bench/bench_check.py [--runs N]
Each run is a fresh `python -m s3_route_agent check` process, as cron or a systemd timer starts it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ

ROOT = Path(__file__).resolve().parents[1]


def one_check(config: Path, *extra: str) -> tuple[float, dict]:
    """Run check once in a new process; (wall seconds, report)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "s3_route_agent", "check", "--config", str(config),
                           "--format", "json", *extra], cwd=ROOT, env=safe_environ(), text=True,
                          capture_output=True, timeout=120)
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(proc.stdout)


def main() -> None:
    """Print cold and warm medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with LocalEnvironment() as env, tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        config = env.write_config(Path(tmp) / "c.yaml", state_dir=str(state))
        rows: dict[str, list[tuple[float, int, float]]] = {"cold": [], "warm": [], "refresh": []}
        for _ in range(args.runs):
            shutil.rmtree(state, ignore_errors=True)
            for kind in ("cold", "warm", "refresh"):
                wall, report = one_check(config, *(("--refresh",) if kind == "refresh" else ()))
                rows[kind].append((wall, report["facts"]["ec2_calls"], report["duration_ms"]))
        targets = len(report["targets"])
        print(f"check against the local environment, {targets} targets, {args.runs} runs each "
              f"(fresh process per run)")
        for kind, values in rows.items():
            walls = [v[0] for v in values]
            calls = sorted({v[1] for v in values})
            inner = statistics.median(v[2] for v in values)
            print(f"  {kind}: wall median {statistics.median(walls):.3f} s "
                  f"(min {min(walls):.3f}, max {max(walls):.3f}), in-process check "
                  f"{inner:.1f} ms, EC2 calls per run {calls}")


if __name__ == "__main__":
    main()
