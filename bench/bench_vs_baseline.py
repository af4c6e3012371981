"""Benchmark (not a test): `check` cold and warm against a plain boto3 + dnspython script.

The yardstick is bench/baseline_check.py: the same facts as a cold check (IMDS, every Describe
call, bucket region and policy, A and AAAA of each name) with no cache, as a user would write it.
Each round runs the three in a rotated order, each as a fresh process on the same local world
(5 targets): ``baseline``; ``cold`` (state_dir emptied first: every EC2 and S3 call);
``warm`` (inventory and bucket facts cached: no AWS call). The ratios are per round (paired),
then the median over rounds; CPU seconds are the child's user + system time (os.wait4).

Bytecode is compiled first (``compileall``), as ``pip install`` does for an installed package:
this workplace sets PYTHONDONTWRITEBYTECODE, and an editable tree without .pyc files would
compile every module on every run, which the baseline's site-packages never do.

    .venv/bin/python bench/bench_vs_baseline.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], environ: dict[str, str]) -> tuple[float, float, str]:
    """Run ``argv``; (wall seconds, CPU seconds of the child, stdout)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=environ, stdout=out,
                                stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    return wall, usage.ru_utime + usage.ru_stime, text


def main() -> None:
    """Print medians and paired ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "agent"), quiet=1)
    environ = safe_environ()
    with LocalEnvironment() as env, tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        config = env.write_config(Path(tmp) / "c.yaml", state_dir=str(state))
        targets = env.config()["targets"]
        hosts = [t["host"].replace("{region}", env.ids.region).replace(
            "{bucket}", t.get("bucket") or "") for t in targets]
        check = [sys.executable, "-m", "s3_route_agent", "check", "--config", str(config),
                 "--format", "json"]
        baseline = [sys.executable, str(ROOT / "bench" / "baseline_check.py"),
                    "--endpoint-url", env.moto.endpoint_url, "--imds", env.imds.url,
                    "--dns", f"127.0.0.1:{env.dns.port}", "--bucket", "demo-bucket", *hosts]

        def run(kind: str) -> tuple[float, float, str]:
            if kind == "cold":
                shutil.rmtree(state, ignore_errors=True)
            return timed(baseline if kind == "baseline" else check, environ)

        # Warm-up: the cache exists for the first warm run; the agreement of the paths is shown.
        _, _, base_out = run("baseline")
        _, _, report = run("cold")
        agent_paths = {t["host"]: t["path"] for t in json.loads(report)["targets"]}
        kinds = ("baseline", "cold", "warm")
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        for i in range(args.rounds):
            order = kinds[i % 3:] + kinds[:i % 3]
            for kind in order:
                wall, cpu, out = run(kind)
                rows[kind].append((wall, cpu))
                if kind == "warm":
                    assert json.loads(out)["facts"]["ec2_calls"] == 0, "warm run called EC2"
        print(f"check vs the plain script (bench/baseline_check.py), {len(hosts)} targets, "
              f"{args.rounds} interleaved rounds, fresh process per run")
        print("  paths, baseline: " + "; ".join(base_out.split("\n")[:len(hosts)]))
        print("  paths, agent:    " + "; ".join(f"{h}: {p}" for h, p in agent_paths.items()))
        base = rows["baseline"]
        for kind in kinds:
            walls = [r[0] for r in rows[kind]]
            cpus = [r[1] for r in rows[kind]]
            line = (f"  {kind:8} wall median {statistics.median(walls) * 1000:6.0f} ms "
                    f"(min {min(walls) * 1000:4.0f}), CPU median "
                    f"{statistics.median(cpus) * 1000:5.0f} ms")
            if kind != "baseline":
                wall_ratio = statistics.median(r[0] / b[0] for r, b in zip(rows[kind], base))
                cpu_ratio = statistics.median(r[1] / b[1] for r, b in zip(rows[kind], base))
                line += f"; paired ratio to baseline: wall {wall_ratio:.2f}x, CPU {cpu_ratio:.2f}x"
            print(line)
        print(f"  load average {os.getloadavg()[0]:.1f} (2 cores shared)")


if __name__ == "__main__":
    main()
