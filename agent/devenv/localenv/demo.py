"""``s3-route-agent demo``: the agent's main job, run against the built-in local environment.

It starts the local environment, writes a config for it, runs exactly what ``check`` runs, and
prints the report. The demo then checks its own story: the regional names take the gateway
endpoint, the interface-endpoint name takes the interface endpoint and the legacy global name
takes the public path; exit 0 when that holds, 1 when it does not.
"""

from __future__ import annotations

import logging
import os
from typing import TextIO

from s3_route_agent.runs.check import run_check
from s3_route_agent.config import load_config
from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from s3_route_agent.redact import redact
from s3_route_agent.report.text import render_text
from s3_route_agent.wiring import build_check_deps

logger = logging.getLogger(__name__)

# The path each demo target must take in the local world.
EXPECTED_PATHS = {"regional": "gateway", "bucket-regional": "gateway", "interface": "interface",
                  "legacy-global": "public", "bucket-global": "public"}


def run_local_demo(output_format: str, out: TextIO) -> int:
    """Run ``check`` once against the local environment and print the report."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(safe_environ(saved))
    try:
        with LocalEnvironment() as env:
            config_path = env.write_config(env.state_dir / "demo.yaml")
            print(f"# local environment: moto {env.moto.endpoint_url}, DNS 127.0.0.1:"
                  f"{env.dns.port}, IMDS {env.imds.url}; config {config_path}", file=out)
            config = load_config(config_path)
            result = run_check(config, build_check_deps(config))
            print(result.report.to_json() if output_format == "json"
                  else redact(render_text(result.report, verbose=True, width=80)), file=out)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    got = {v.target.name: v.path.value for v in result.report.verdicts}
    wrong = {name: (path, got.get(name)) for name, path in EXPECTED_PATHS.items()
             if got.get(name) != path}
    if wrong:
        for name, (want, have) in sorted(wrong.items()):
            print(f"demo: {name} took {have}, expected {want}", file=out)
        return 1
    print("\n# demo: every target took the path the local world predicts "
          "(regional -> gateway, vpce name -> interface, legacy global -> public).", file=out)
    return 0


def run_demo(output_format: str, out: TextIO) -> int:
    """The demo: the local environment, then (as root, with namespaces) every lab scenario."""
    from s3_route_agent.devenv.lab.netns import netns_available
    status = run_local_demo(output_format, out)
    available, why = netns_available()
    if not available:
        print(f"\n# lab scenarios skipped: {why}; the live evidence (test transfer, packet "
              "probes, NAT hop) needs the network-namespace lab.", file=out)
        return status
    from s3_route_agent.devenv.lab.scenarios import run_lab_demo
    print("\n# lab: live evidence in network namespaces (every scenario)", file=out)
    return max(status, run_lab_demo(out, output_format))
