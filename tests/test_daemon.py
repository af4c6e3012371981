"""``s3-route-agent run`` under a real notify socket: READY, WATCHDOG, RELOADING (good and bad
config), STOPPING and exit 0 on SIGTERM; step timeouts; a failing cycle does not end the loop.

The daemon runs as a subprocess against the local environment (moto, DNS and IMDS on 127.0.0.1)
with fake credentials; NOTIFY_SOCKET is a unix datagram socket this test binds and reads.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml

from agent.check import CheckDeps
from agent.config import AgentConfig
from agent.daemon import EXIT_CONFIG, Daemon, SdNotifier, call_with_timeout, host_phase, StepTimeout
from agent.localenv.environment import LocalEnvironment, safe_environ
from agent.report import report_schema
from agent.sinks import FanOut, Sink

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment() as local:
        yield local


class NotifySocket:
    """A bound AF_UNIX datagram socket that records every sd_notify message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def lines(self) -> list[str]:
        return [line for _, m in list(self.messages) for line in m.split("\n")]

    def wait_for(self, predicate: Any, timeout: float = 20.0, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, message in list(self.messages)[after:]:
                if predicate(message):
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no matching notify message; got {self.messages!r}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def _start(config: Path, notify: NotifySocket, watchdog_usec: int = 1_000_000
           ) -> subprocess.Popen[str]:
    environ = safe_environ()
    environ.update(NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC=str(watchdog_usec),
                   PYTHONPATH=str(ROOT))
    environ.pop("WATCHDOG_PID", None)
    return subprocess.Popen([sys.executable, "-m", "agent", "--log-level", "INFO", "run",
                             "--config", str(config)], cwd=ROOT, env=environ, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _reports(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _wait_reports(path: Path, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _reports(path)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"only {len(_reports(path))} report(s) in {path}")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, float, str]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:  # only the process this test started
            proc.kill()
            proc.communicate()
    return proc.returncode, time.monotonic() - started, err


def test_daemon_notify_protocol_reload_and_stop(env: LocalEnvironment, tmp_path: Path) -> None:
    reports = tmp_path / "reports.jsonl"
    prom = tmp_path / "s3_route_agent.prom"
    sections = {"daemon": {"interval_seconds": 0.3, "jitter_seconds": 0},
                "outputs": {"file": {"path": str(reports)}, "prometheus": {"path": str(prom)}}}
    config = env.write_config(tmp_path / "config.yaml", **sections)
    good_text = config.read_text()
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = _start(config, notify)
    try:
        ready = notify.wait_for(lambda m: "READY=1" in m)
        assert "STATUS=" in ready
        notify.wait_for(lambda m: m == "WATCHDOG=1")
        first = _wait_reports(reports, 2)
        for report in first:
            jsonschema.validate(report, report_schema())
        notify.wait_for(lambda m: m.startswith("STATUS=") and "cycle" in m)
        assert prom.exists()

        # A bad config: RELOADING=1, the old config stays, STATUS says why, cycles go on.
        config.write_text("daemon: {interval_seconds: -1}\n")
        mark = len(notify.messages)
        proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for(lambda m: "RELOADING=1" in m, after=mark)
        assert "MONOTONIC_USEC=" in reloading
        failed = notify.wait_for(lambda m: "reload failed" in m, after=mark)
        assert "daemon.interval_seconds" in failed and "READY=1" in failed
        count = len(_reports(reports))
        _wait_reports(reports, count + 2)
        assert proc.poll() is None

        # A good config again: reloaded, READY=1.
        config.write_text(good_text)
        mark = len(notify.messages)
        proc.send_signal(signal.SIGHUP)
        notify.wait_for(lambda m: "RELOADING=1" in m, after=mark)
        notify.wait_for(lambda m: "READY=1" in m and "config reloaded" in m, after=mark)
        count = len(_reports(reports))
        _wait_reports(reports, count + 1)
    finally:
        code, took, err = _stop(proc)
        notify.close()
    assert code == 0, err
    assert took < 10
    lines = notify.lines()
    assert any(line == "STOPPING=1" for line in lines)
    assert lines.index("READY=1") < lines.index("STOPPING=1")
    watchdogs = [t for t, m in notify.messages if m == "WATCHDOG=1"]
    assert len(watchdogs) >= 2
    gaps = [b - a for a, b in zip(watchdogs, watchdogs[1:])]
    assert max(gaps) < 1.0, gaps  # at half of WATCHDOG_USEC (1 s), never a full period
    assert "reload failed" in err  # and in the log


def test_bad_config_at_start_exits_78(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("nonsense_key: 1\n")
    notify = NotifySocket(tmp_path / "n.sock")
    proc = _start(config, notify)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        notify.close()
    assert proc.returncode == EXIT_CONFIG
    assert "nonsense_key" in err and "Traceback" not in err
    assert any("config error" in m for _, m in notify.messages)


class _BlackHole:
    """A UDP socket on 127.0.0.1 that receives DNS queries and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]


def test_hung_step_times_out_and_sigterm_stops_within_10s(env: LocalEnvironment,
                                                          tmp_path: Path) -> None:
    hole = _BlackHole()
    reports = tmp_path / "reports.jsonl"
    config = env.write_config(
        tmp_path / "config.yaml",
        dns={"nameservers": ["127.0.0.1"], "port": hole.port, "timeout_seconds": 60},
        daemon={"interval_seconds": 600, "jitter_seconds": 0, "step_timeout_seconds": 0.5,
                "cycle_timeout_seconds": 120, "stop_timeout_seconds": 2},
        outputs={"file": {"path": str(reports)}})
    notify = NotifySocket(tmp_path / "n.sock")
    proc = _start(config, notify)
    try:
        (report,) = _wait_reports(reports, 1, timeout=40)
        assert report["targets"]
        for target in report["targets"]:
            assert target["dns"]["failure"]["kind"] == "timeout"
            assert "no answer within 0.5 s" in target["dns"]["failure"]["message"]
        # The second cycle is 600 s away; stop now. Then once more, with a step hanging: a
        # fresh daemon whose first DNS step never returns (step timeout 60 s).
        code, took, err = _stop(proc)
        assert code == 0 and took < 10, err
        config.write_text(config.read_text().replace("step_timeout_seconds: 0.5",
                                                     "step_timeout_seconds: 60"))
        proc = _start(config, notify)
        notify.wait_for(lambda m: "READY=1" in m, after=len(notify.messages))
        time.sleep(0.5)  # the first DNS step is now waiting on the black hole
        code, took, err = _stop(proc)
        assert code == 0, err
        assert took < 10
        # The hung step was abandoned at SIGTERM; the cycle then finished and its report was
        # flushed (never lost) before the exit.
        last = _reports(reports)[-1]
        assert any("abandoned, the agent is stopping" in (t["dns"]["failure"] or {}).get(
            "message", "") for t in last["targets"]), last
        assert "stopped after 1 cycle" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
        hole.sock.close()


class _Memory(Sink):
    name = "memory"

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def emit(self, report: dict[str, Any]) -> None:
        self.reports.append(report)


def test_failing_cycle_reports_unknown_and_loop_continues(env: LocalEnvironment,
                                                          tmp_path: Path) -> None:
    from agent.wiring import build_check_deps
    config = env.write_config(tmp_path / "c.yaml", daemon={"interval_seconds": 0.01,
                                                           "jitter_seconds": 0})
    calls = {"n": 0}

    def deps_factory(cfg: AgentConfig) -> CheckDeps:
        real = build_check_deps(cfg)

        def flaky_identity() -> Any:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("simulated bug in a collector")
            return real.identity()
        from dataclasses import replace
        return replace(real, identity=flaky_identity)

    memory = _Memory()
    daemon = Daemon(str(config), max_cycles=3, notifier=SdNotifier({}),
                    deps_factory=deps_factory, sinks_factory=lambda _c: FanOut([memory]))
    assert daemon.run() == 0
    statuses = [r["status"] for r in memory.reports]
    assert len(statuses) == 3 and statuses[1] == "UNKNOWN"
    assert memory.reports[1]["errors"] == ["internal error: RuntimeError: simulated bug in a "
                                           "collector"]
    assert statuses[0] != "UNKNOWN" and statuses[2] != "UNKNOWN"
    for report in memory.reports:
        jsonschema.validate(report, report_schema())


def test_host_phase_is_stable_and_bounded() -> None:
    a = host_phase(60, seed="host-a")
    assert a == host_phase(60, seed="host-a") and 0 <= a < 60
    assert a != host_phase(60, seed="host-b")
    assert host_phase(0) == 0.0


def test_call_with_timeout_and_cancel() -> None:
    assert call_with_timeout(lambda: 42, 1, "quick") == 42
    with pytest.raises(StepTimeout, match="no answer within 0.2 s"):
        call_with_timeout(lambda: time.sleep(5), 0.2, "slow")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(StepTimeout, match="stopping"):
        call_with_timeout(lambda: time.sleep(5), 10, "slow", cancel)


def test_notifier_abstract_socket_and_watchdog_pid() -> None:
    notifier = SdNotifier({"NOTIFY_SOCKET": "@s3-route-agent-test", "WATCHDOG_USEC": "4000000",
                           "WATCHDOG_PID": str(os.getpid())})
    assert notifier.address == "\0s3-route-agent-test" and notifier.watchdog_interval == 2.0
    other = SdNotifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None and other.notify("READY=1") is False
