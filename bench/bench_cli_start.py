"""Benchmark (not a test): wall and CPU time of `s3-route-agent --help` and `validate-config`
(the example config, which sets aws.region: the region list is read from botocore's endpoint
data, and IMDS is not asked), each a fresh process with fake credentials; medians of N runs. Bytecode is compiled first, as pip install does
(see bench_vs_baseline.py).

    .venv/bin/python bench/bench_cli_start.py [--runs 21]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from s3_route_agent.devenv.localenv.environment import safe_environ

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=safe_environ(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, argv
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def main() -> None:
    """Print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "agent"), quiet=1)
    cli = [sys.executable, "-m", "s3_route_agent"]
    example = str(ROOT / "config" / "s3-route-agent.example.yaml")
    print(f"CLI start, fresh process per run, medians of {args.runs} runs")
    for label, argv in (("--help", cli + ["--help"]),
                        ("validate-config", cli + ["validate-config", example]),
                        ("python -c pass", [sys.executable, "-c", "pass"])):
        rows = [timed(argv) for _ in range(args.runs)]
        print(f"  {label:16} wall {statistics.median(r[0] for r in rows) * 1000:5.0f} ms, "
              f"CPU {statistics.median(r[1] for r in rows) * 1000:5.0f} ms")
    print(f"  load average {os.getloadavg()[0]:.1f} (2 cores shared)")


if __name__ == "__main__":
    main()
