"""The systemd units verify with ``systemd-analyze verify`` and say what issue 5 asks for.

``systemd-analyze verify`` fails when ExecStart's binary does not exist ("Command ... is not
executable"), and the units name the installed path /opt/s3-route-agent/bin/s3-route-agent. The test
verifies copies in which that path is replaced by this checkout's console script (an existing
executable); nothing else changes. Unknown keys only produce a warning with exit status 0, so
the test also requires empty output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
INSTALLED = "/opt/s3-route-agent/bin/s3-route-agent"
NAMES = ("s3-route-agent.service", "s3-route-agent-check.service", "s3-route-agent-check.timer")

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze missing (make test installs systemd)")


def _entry_point() -> str:
    script = Path(sys.executable).with_name("s3-route-agent")
    return str(script if script.exists() else Path(sys.executable))


def _verify(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *[str(directory / n) for n in NAMES]],
                          capture_output=True, text=True, timeout=120)


def _copy(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    for name in NAMES:
        text = (UNITS / name).read_text().replace(INSTALLED, _entry_point())
        text += (extra or {}).get(name, "")
        (tmp_path / name).write_text(text)
    return tmp_path


def _directives(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_units_verify_cleanly(tmp_path: Path) -> None:
    result = _verify(_copy(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    result = _verify(_copy(tmp_path, {"s3-route-agent.service": "\n[Service]\nWatchdogSecs=5\n"}))
    assert "WatchdogSecs" in result.stderr
    missing = subprocess.run(["systemd-analyze", "verify", "--man=no",
                              str(UNITS / "s3-route-agent.service")],
                             capture_output=True, text=True, timeout=120)
    if Path(INSTALLED).exists():
        pytest.skip(f"{INSTALLED} exists on this machine; the missing-binary check needs it absent")
    assert missing.returncode != 0 and "not executable" in missing.stderr


def test_service_directives() -> None:
    d = _directives("s3-route-agent.service")
    assert d["Type"] == ["notify"]
    assert d["WatchdogSec"] and d["Restart"] == ["on-failure"]
    assert d["RestartPreventExitStatus"] == ["78"]  # s3_route_agent.runs.daemon.EXIT_CONFIG
    assert "DynamicUser" not in d and d["StateDirectory"] and d["LogsDirectory"]
    assert d["User"] == ["s3-route-agent"] and d["Group"] == ["s3-route-agent"]
    assert d["LogsDirectoryMode"] == ["0750"] and d["UMask"] == ["0027"]  # group-readable
    assert "/var/lib/prometheus/node-exporter" in d["ReadWritePaths"][0]
    assert d["ProtectSystem"] == ["strict"] and d["NoNewPrivileges"] == ["yes"]
    assert d["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    assert d["AmbientCapabilities"] == ["CAP_NET_RAW"]
    families = d["RestrictAddressFamilies"][0].split()
    assert {"AF_PACKET", "AF_NETLINK", "AF_UNIX", "AF_INET", "AF_INET6"} <= set(families)
    assert " run " in d["ExecStart"][0]
    # TimeoutStopSec leaves room for the agent's own stop timeout (8 s, must stay below 10 s).
    assert int(d["TimeoutStopSec"][0]) > 10
    from s3_route_agent.runs.daemon import EXIT_CONFIG
    assert EXIT_CONFIG == 78


def test_timer_and_oneshot() -> None:
    timer = _directives("s3-route-agent-check.timer")
    assert timer["RandomizedDelaySec"] and timer["AccuracySec"] == ["1us"]
    assert timer["Persistent"] == ["true"] and timer["Unit"] == ["s3-route-agent-check.service"]
    check = _directives("s3-route-agent-check.service")
    assert check["Type"] == ["oneshot"] and " check " in check["ExecStart"][0]
    assert check["SuccessExitStatus"] == ["1 2"]
    service = _directives("s3-route-agent.service")
    # One user and one state directory for both units (issue 12).
    for key in ("User", "Group", "StateDirectory"):
        assert check[key] == service[key], key
    assert "PYTHONUNBUFFERED=1" in check["Environment"]


def test_sysusers_declares_the_units_user() -> None:
    line = next(ln for ln in (UNITS / "s3-route-agent.sysusers").read_text().splitlines()
                if ln and not ln.startswith("#"))
    kind, name, *_ = line.split()
    assert (kind, name) == ("u", _directives("s3-route-agent.service")["User"][0])
