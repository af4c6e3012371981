"""``s3-route-agent observe``: a live top-like view on a TTY (a real pseudo-terminal: refreshed,
sorted by bytes, the path coloured, NO_COLOR honoured), one JSON snapshot otherwise.

The command runs as its own process inside a test network namespace that holds known
connections; its inventory comes from the cache a ``check`` left in state_dir (so it needs no
AWS endpoint from inside the namespace). Needs root; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import can_make_namespaces, namespace_with_flows

from s3_route_agent.cli import main
from s3_route_agent.devenv.localenv.environment import GLOBAL_S3_IP, REGIONAL_S3_IP

AVAILABLE, WHY = can_make_namespaces()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"test namespaces unavailable: {WHY}")


@pytest.fixture
def observed_host(local_env, tmp_path):
    """A config whose inventory is cached, and a namespace with a gateway and a public flow."""
    ids = local_env.ids
    config = local_env.write_config(
        tmp_path / "agent.yaml", targets=[{"name": "r", "host": "s3.{region}.amazonaws.com"}],
        state_dir=str(tmp_path / "state"), imds={"enabled": False},
        aws={"region": "eu-west-1", "endpoint_url": local_env.moto.endpoint_url},
        identity={"vpc_id": ids.vpc_id, "subnet_id": ids.app_subnet_id,
                  "instance_id": ids.instance_id})
    assert main(["check", "--config", str(config), "--format", "json"]) == 0   # fills the cache
    with namespace_with_flows([REGIONAL_S3_IP, GLOBAL_S3_IP],
                              [f"{REGIONAL_S3_IP}:200000", f"{GLOBAL_S3_IP}:400000"]) as ns:
        yield config, ns


def _agent(ns: str, config: Path, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-m", "s3_route_agent", "observe",
            "--config", str(config), *args]


def _on_a_tty(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                            env=env)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:      # EIO: the other side closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()              # only the process this test started
            proc.wait()
        os.close(master)
        proc.stderr.close()
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_on_a_tty_a_refreshed_coloured_view_sorted_by_bytes(observed_host, local_env):
    config, ns = observed_host
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    code, screen = _on_a_tty(_agent(ns.name, config, "--count", "2", "--interval", "0.2"), env)
    assert code == 0
    assert screen.count("\x1b[H\x1b[2J") == 2                      # two refreshes
    last = screen.rsplit("\x1b[H\x1b[2J", 1)[1]
    assert "expect private  status CRITICAL" in last
    rows = [line for line in last.splitlines() if f"{ns.client_pid} " in line]
    assert GLOBAL_S3_IP in rows[0] and REGIONAL_S3_IP in rows[1]    # most bytes first
    assert "\x1b[31mpublic" in rows[0] and "\x1b[32mgateway" in rows[1]
    assert f"off the expected path: python (pid {ns.client_pid}) -> {GLOBAL_S3_IP}" in last


def test_no_color_is_honoured(observed_host):
    config, ns = observed_host
    code, screen = _on_a_tty(_agent(ns.name, config, "--count", "1"),
                             dict(os.environ, NO_COLOR="1"))
    assert code == 0 and f"{ns.client_pid} " in screen and "\x1b[3" not in screen


def test_not_a_tty_one_json_snapshot(observed_host, local_env):
    config, ns = observed_host
    done = subprocess.run(_agent(ns.name, config), capture_output=True, text=True, timeout=60)
    snapshot = json.loads(done.stdout)
    assert snapshot["command"] == "observe" and snapshot["status"] == "CRITICAL"
    assert done.returncode == 2
    flows = {f["remote_ip"]: f for f in snapshot["observed"]["flows"]}
    assert flows[GLOBAL_S3_IP]["path"] == "public" and flows[REGIONAL_S3_IP]["path"] == "gateway"
    assert flows[GLOBAL_S3_IP]["process"]["pid"] == ns.client_pid
    assert flows[GLOBAL_S3_IP]["bytes_sent"] >= 400000
    assert snapshot["identity"]["vpc_id"] == local_env.ids.vpc_id
    # observe takes no byte counts from check or the daemon: it writes no state
    assert not (config.parent / "state" / "observed.json").exists()


def test_bad_arguments_are_unknown(observed_host, capsys):
    config, _ = observed_host
    assert main(["observe", "--config", str(config), "--interval", "0"]) == 3
    assert "--interval must be above 0" in capsys.readouterr().err
