"""Serve the local environment (moto, DNS, IMDS on 127.0.0.1) inside the booted-systemd sandbox
of ``test_systemd_boot.py`` and write the agent's config for it; runs until SIGTERM.

Usage: ``python serve_localenv.py CONFIG_PATH`` (a path inside the sandbox).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from s3_route_agent.devenv.localenv.environment import LocalEnvironment

TEXTFILE = "/var/lib/prometheus/node-exporter/s3-route-agent.prom"


def main(config_path: str) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalEnvironment() as env:
        text = env.config(
            state_dir="/var/lib/s3-route-agent",
            daemon={"interval_seconds": 2, "jitter_seconds": 0},
            outputs={"file": {"path": "/var/log/s3-route-agent/reports.jsonl"},
                     "prometheus": {"path": TEXTFILE}})
        import yaml
        target = Path(config_path)
        target.with_suffix(".tmp").write_text(yaml.safe_dump(text, sort_keys=False))
        target.with_suffix(".tmp").chmod(0o644)
        target.with_suffix(".tmp").replace(target)
        print("serving", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
