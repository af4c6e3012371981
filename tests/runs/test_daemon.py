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

from s3_route_agent.runs.check import CheckDeps
from s3_route_agent.config import AgentConfig
from s3_route_agent.runs.daemon import EXIT_CONFIG, Daemon, SdNotifier, call_with_timeout, host_phase, StepTimeout
from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from s3_route_agent.engine.model import Identity, Status
from s3_route_agent.report.document import Report, report_schema
from s3_route_agent.sinks import FanOut
from s3_route_agent.devenv.faults import FaultyTcpEndpoint
from support import MemorySink, TransfersTo

ROOT = Path(__file__).resolve().parents[2]


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
    environ.update(NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC=str(watchdog_usec))
    environ.pop("WATCHDOG_PID", None)
    return subprocess.Popen([sys.executable, "-m", "s3_route_agent", "--log-level", "INFO", "run",
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



@pytest.mark.parametrize("content", [b"aws:\n  region: \xe9u-west-1\n", b"aws:\n  region: !foo x\n",
                                     b"? [a, b]\n: 1\n"], ids=["not utf-8", "unknown tag",
                                                                 "non-scalar key"])
def test_unreadable_config_at_start_also_exits_78(tmp_path: Path, content: bytes) -> None:
    """Every config that cannot be loaded is EX_CONFIG (78), not a crash systemd restarts."""
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    assert Daemon(str(config), notifier=SdNotifier({})).run() == EXIT_CONFIG

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


def test_failing_cycle_reports_unknown_and_loop_continues(env: LocalEnvironment,
                                                          tmp_path: Path) -> None:
    from s3_route_agent.wiring import build_check_deps
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

    memory = MemorySink()
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


# ---- stop with a canary in flight (issue 5 section 1: "delete the canary") --------------------

HARNESS = ROOT / "tests" / "local_transfer_agent.py"


class SlowCanaryGets:
    """WSGI middleware for the in-process moto server: holds GETs of canary keys until released,
    so that a signal lands while the transfer is in flight (its canary PUT and not yet deleted).

    HEAD, DELETE and listings pass at once: the cleanup under test must get through."""

    def __init__(self, app: Any, marker: str) -> None:
        self.app = app
        self.marker = marker
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") == "GET" and self.marker in environ.get("PATH_INFO", ""):
            self.held.set()
            self.release.wait(60)
        return self.app(environ, start_response)


@pytest.fixture
def slow_canary(env: LocalEnvironment) -> Iterator[tuple[SlowCanaryGets, str, str]]:
    """A fresh bucket, a unique canary prefix, and canary GETs held by the moto server."""
    import uuid

    import boto3
    bucket = f"canary-{uuid.uuid4().hex[:12]}"
    prefix = f"s3-route-agent/canary/{uuid.uuid4().hex[:8]}/"
    boto3.client("s3", region_name="eu-west-1", endpoint_url=env.moto.endpoint_url).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    wsgi = env.moto._server._server      # werkzeug's server; each request reads .app
    original = wsgi.app
    slow = SlowCanaryGets(original, prefix)
    wsgi.app = slow
    try:
        yield slow, bucket, prefix
    finally:
        slow.release.set()
        wsgi.app = original


def _canaries(env: LocalEnvironment, bucket: str, prefix: str) -> list[str]:
    import boto3
    listed = boto3.client("s3", region_name="eu-west-1", endpoint_url=env.moto.endpoint_url
                          ).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def _transfer_config(env: LocalEnvironment, path: Path, bucket: str, prefix: str,
                     **sections: Any) -> Path:
    targets = [{"name": "canary", "host": "{bucket}.s3.{region}.amazonaws.com",
                "bucket": bucket, "expect": "any"}]
    return env.write_config(path, targets, buckets=[bucket], transfer={
        "enabled": True, "bucket": bucket, "prefix": prefix, "size_bytes": 4096,
        "timeout_seconds": 30}, **sections)


def _start_harness(env: LocalEnvironment, args: list[str], extra: dict[str, str]
                   ) -> subprocess.Popen[str]:
    environ = safe_environ()
    environ.update(S3_ROUTE_AGENT_TEST_TRANSFER_ENDPOINT=env.moto.endpoint_url,
                   **extra)
    environ.pop("WATCHDOG_PID", None)
    return subprocess.Popen([sys.executable, str(HARNESS), "--log-level", "INFO", *args], cwd=ROOT,
                            env=environ, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_mid_transfer_deletes_the_canary(env: LocalEnvironment, tmp_path: Path,
                                                 slow_canary: tuple[SlowCanaryGets, str, str]
                                                 ) -> None:
    """SIGTERM while the canary's GET hangs: the worker cannot be interrupted, so the daemon's
    cleanup hook DELETEs the announced canary; exit 0 within 10 s, STOPPING=1 sent."""
    slow, bucket, prefix = slow_canary
    config = _transfer_config(env, tmp_path / "config.yaml", bucket, prefix,
                              daemon={"interval_seconds": 600, "jitter_seconds": 0,
                                      "stop_timeout_seconds": 2},
                              outputs={"file": {"path": str(tmp_path / "reports.jsonl")}})
    notify = NotifySocket(tmp_path / "n.sock")
    proc = _start_harness(env, ["run", "--config", str(config)],
                          {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"})
    try:
        assert slow.held.wait(40), "the transfer never reached its GET"
        (key,) = _canaries(env, bucket, prefix)          # PUT done, canary in flight
        assert key.startswith(prefix)
        code, took, err = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
    assert code == 0, err
    assert took < 10, took
    assert "STOPPING=1" in notify.lines()
    assert _canaries(env, bucket, prefix) == [], err
    assert "canary cleanup: deleted" in err and key in err


def test_sigint_mid_transfer_on_check_deletes_the_canary(
        env: LocalEnvironment, tmp_path: Path,
        slow_canary: tuple[SlowCanaryGets, str, str]) -> None:
    """``check`` runs the transfer in the main thread: SIGINT raises there, the transfer's own
    ``finally`` DELETEs the canary, and the run ends UNKNOWN (3) saying it was interrupted."""
    slow, bucket, prefix = slow_canary
    config = _transfer_config(env, tmp_path / "config.yaml", bucket, prefix)
    proc = _start_harness(env, ["check", "--config", str(config), "--format", "json"], {})
    try:
        assert slow.held.wait(40), "the transfer never reached its GET"
        assert len(_canaries(env, bucket, prefix)) == 1
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 3, err
    assert "interrupted" in err
    assert _canaries(env, bucket, prefix) == [], err
    assert "canary" in err and "deleted: True" in err


def test_canary_registry_drain_deletes_and_verifies(env: LocalEnvironment) -> None:
    """The registry the daemon drains: DELETE then HEAD; an unreachable S3 is reported, not
    raised, and the canary stays announced."""
    import uuid

    import boto3

    from s3_route_agent.live.canary import CanaryRegistry, InFlightCanary
    bucket = f"canary-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=env.moto.endpoint_url)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=bucket, Key="c/1", Body=b"x")
    registry = CanaryRegistry()
    token = registry.add(InFlightCanary(bucket, "c/1", "h", lambda _t: s3))
    (done,) = registry.drain(time.monotonic() + 5)
    assert done.deleted and len(registry) == 0 and "Contents" not in s3.list_objects_v2(
        Bucket=bucket)
    registry.discard(token)                       # already gone: harmless

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    port = hole.getsockname()[1]
    hole.close()                                  # nothing listens there
    from botocore.config import Config
    dead = boto3.client("s3", region_name="eu-west-1", endpoint_url=f"http://127.0.0.1:{port}",
                        config=Config(retries={"total_max_attempts": 1}))
    registry.add(InFlightCanary(bucket, "c/2", "h", lambda _t: dead))
    (failed,) = registry.drain(time.monotonic() + 5)
    assert not failed.deleted and "failed" in failed.message and len(registry) == 1


# ---- first cycle at the host's phase (issue 5 section 1 and 2: spread the fleet) -------------

class _Recording(SdNotifier):
    """A notifier that records what it would send, with the time."""

    def __init__(self) -> None:
        super().__init__({})
        self.sent: list[tuple[float, tuple[str, ...]]] = []

    def notify(self, *assignments: str) -> bool:
        self.sent.append((time.monotonic(), assignments))
        return True


def test_first_cycle_waits_for_the_host_phase(env: LocalEnvironment, tmp_path: Path) -> None:
    """The first cycle starts at the stable per-host phase; EXTEND_TIMEOUT_USEC covers the wait
    and READY=1 comes once the first cycle has started."""
    seed = next(f"host-{i}" for i in range(1000) if 0.6 < host_phase(2.0, f"host-{i}") < 1.4)
    phase = host_phase(2.0, seed)
    config = env.write_config(tmp_path / "c.yaml", daemon={"interval_seconds": 600,
                                                           "jitter_seconds": 2.0})
    notifier = _Recording()
    memory = MemorySink()
    daemon = Daemon(str(config), max_cycles=1, notifier=notifier, host_seed=seed,
                    sinks_factory=lambda _c: FanOut([memory]))
    started = time.monotonic()
    assert daemon.run() == 0
    first_at, first = notifier.sent[0]
    assert first[0] == f"EXTEND_TIMEOUT_USEC={int((phase + 30) * 1e6)}"
    assert "first cycle in" in first[1] and first_at - started < 0.5
    ready_at = next(t for t, a in notifier.sent if "READY=1" in a)
    assert ready_at - started >= phase - 0.05, (ready_at - started, phase)
    assert len(memory.reports) == 1
    no_jitter = _Recording()
    config = env.write_config(tmp_path / "d.yaml", daemon={"interval_seconds": 600,
                                                           "jitter_seconds": 0})
    assert Daemon(str(config), max_cycles=1, notifier=no_jitter,
                  sinks_factory=lambda _c: FanOut([MemorySink()])).run() == 0
    assert not any("EXTEND_TIMEOUT_USEC" in a[0] for _, a in no_jitter.sent)


# ---- flow-log corroboration each cycle (issue 4 section 6, in the daemon) ---------------------

@pytest.fixture
def flow_logs_world(env: LocalEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> Path:
    """A canary bucket and a flow-log group holding what the VPC would deliver for the
    transfer's flow (peer 127.0.0.1 here: transfers go to moto, ``TransfersTo``) plus another
    ENI's flow that must not count. Returns a config with transfer and flow_logs enabled."""
    import uuid

    import boto3

    bucket = f"canary-{uuid.uuid4().hex[:12]}"
    endpoint = env.moto.endpoint_url
    boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for name, value in safe_environ().items():
        monkeypatch.setenv(name, value)
    group = f"/vpc/flow-logs-{uuid.uuid4().hex[:8]}"
    eni = env.ids.instance_eni_id
    logs = boto3.client("logs", region_name="eu-west-1", endpoint_url=endpoint)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=eni)
    now = int(time.time())
    logs.put_log_events(logGroupName=group, logStreamName=eni, logEvents=[
        {"timestamp": now * 1000, "message": f"5 111122223333 {eni} 10.0.1.10 127.0.0.1 49152 443 "
                                             f"6 10 5000 {now} {now + 1} ACCEPT OK 7 S3"},
        {"timestamp": now * 1000, "message": f"5 111122223333 eni-other 10.0.1.11 127.0.0.1 49153 "
                                             f"443 6 10 5000 {now} {now + 1} ACCEPT OK 8 S3"}])
    return _transfer_config(env, tmp_path / "c.yaml", bucket, "s3-route-agent/canary/",
                            state_dir=str(tmp_path / "state"),
                            daemon={"interval_seconds": 0.01, "jitter_seconds": 0},
                            flow_logs={"enabled": True, "log_group": group,
                                       "margin_seconds": 120, "limit": 20,
                                       "max_wait_seconds": 600})


def test_daemon_corroborates_earlier_runs_with_flow_logs(flow_logs_world: Path,
                                                         env: LocalEnvironment,
                                                         tmp_path: Path) -> None:
    """Cycle 1 starts a Logs Insights query for its transfer window; cycle 2 collects it and its
    report names run 1 with the traffic path; run 2's own query is left pending."""
    from s3_route_agent.collectors.flow_logs import PendingStore
    memory = MemorySink()
    daemon = Daemon(str(flow_logs_world), max_cycles=2, notifier=SdNotifier({}),
                    deps_factory=TransfersTo(env.moto.endpoint_url).check_deps,
                    sinks_factory=lambda _c: FanOut([memory]))
    assert daemon.run() == 0
    first, second = memory.reports
    assert first["targets"][0]["transfer"]["outcome"] == "ok", first["targets"][0]["transfer"]
    assert "flow_logs" not in first
    (answer,) = second["flow_logs"]
    assert answer["corroborates_run"] == first["run_id"]
    assert answer["status"] == "found" and answer["path"] == "gateway"
    assert answer["traffic_paths"] == ["7"] and len(answer["flows"]) == 1
    for report in memory.reports:
        jsonschema.validate(report, report_schema())
    assert [p.run_id for p in PendingStore(tmp_path / "state").load()] == [second["run_id"]]


def test_check_one_shots_corroborate_earlier_runs_with_flow_logs(
        flow_logs_world: Path, env: LocalEnvironment,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Timer or cron one-shots: each `check` attaches what earlier runs' queries found (the
    queue lives in state_dir) and starts one for its own transfer window."""
    import json

    from s3_route_agent.cli import main
    reports = []
    for _ in range(2):
        main(["check", "--config", str(flow_logs_world), "--format", "json"],
             wiring=TransfersTo(env.moto.endpoint_url))
        reports.append(json.loads(capsys.readouterr().out))
    first, second = reports
    assert "flow_logs" not in first
    (answer,) = second["flow_logs"]
    assert answer["corroborates_run"] == first["run_id"] and answer["path"] == "gateway"
    assert answer["traffic_paths"] == ["7"]
    for report in reports:
        jsonschema.validate(report, report_schema())


def test_flow_log_step_is_bounded(env: LocalEnvironment, tmp_path: Path) -> None:
    """At most ``max_pending`` queries wait (the oldest are given up, reported expired); a
    missing log group never raises; a hanging CloudWatch costs the cycle one step timeout."""
    import boto3

    from s3_route_agent.collectors.flow_logs import CycleCorroboration, FlowLogSettings, PendingStore
    logs = boto3.client("logs", region_name="eu-west-1", endpoint_url=env.moto.endpoint_url)
    group = "/vpc/flow-logs-empty"
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    store = PendingStore(tmp_path)
    step = CycleCorroboration(FlowLogSettings(group, max_wait_seconds=600), store,
                              lambda _region: logs, max_pending=2)
    identity = Identity(region="eu-west-1", vpc_id="vpc-1", subnet_id="subnet-1",
                        interface_id="eni-0abc")
    base = time.time()
    for n in range(3):
        out = step.step(f"run-{n}", identity, ["198.51.100.11"], base + n, base + n + 1,
                        base + n + 2)
    assert [p.run_id for p in store.load()] == ["run-1", "run-2"]
    assert [(c.corroborates_run, c.status) for c in out] == [("run-0", "expired")]
    missing = CycleCorroboration(FlowLogSettings("/no/such/group"), PendingStore(tmp_path / "m"),
                                 lambda _region: logs)
    assert missing.step("x", identity, ["198.51.100.11"], base, base, base) == ()
    assert missing.store.load() == []

    class Hanging:
        def step(self, *_: Any) -> tuple[Any, ...]:
            time.sleep(5)
            return ("never",)
    config = env.write_config(tmp_path / "c.yaml", daemon={"step_timeout_seconds": 0.3})
    daemon = Daemon(str(config), notifier=SdNotifier({}), sinks_factory=lambda _c: FanOut([]))
    from s3_route_agent.config import load_config
    started = time.monotonic()
    report = Report(run_id="r", started=time.time(), duration_seconds=0.0, identity=identity,
                    status=Status.OK)
    kept = daemon._corroborate(Hanging(), report, time.time(), load_config(config))
    assert kept is report and time.monotonic() - started < 2


# ---- faults under a running daemon (issue 9) ----------------------------------------------------

def _report_times(reports: list[dict[str, Any]]) -> list[float]:
    import datetime
    return [datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
            for r in reports]


def test_hanging_cloudwatch_never_delays_a_cycle_the_watchdog_or_the_stop(
        env: LocalEnvironment, tmp_path: Path) -> None:
    """Section 1: CloudWatch Logs accepts connections and never answers (each send would wait
    30 s for its read timeout). At a 1 s interval the reports keep coming on time, the watchdog
    is fed, SIGTERM stops within the README's 10 s, and every report stays spooled: a sink
    started afterwards delivers all of them, in order."""
    from s3_route_agent.sinks.cloudwatch_logs import CloudWatchLogsSink
    from s3_route_agent.aws import make_client
    hang = FaultyTcpEndpoint()
    reports, spool = tmp_path / "reports.jsonl", tmp_path / "spool"
    group, stream = "/s3-route-agent/daemon-hang", "host-hang"
    config = env.write_config(
        tmp_path / "config.yaml", daemon={"interval_seconds": 1, "jitter_seconds": 0},
        outputs={"file": {"path": str(reports)}, "cloudwatch_logs": {
            "enabled": True, "endpoint_url": hang.url, "timeout_seconds": 30,
            "spool_dir": str(spool), "log_group": group, "log_stream": stream}})
    notify = NotifySocket(tmp_path / "n.sock")
    proc = _start(config, notify, watchdog_usec=2_000_000)
    try:
        _wait_reports(reports, 2, timeout=60)
        deadline = time.monotonic() + 20
        while not hang.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hang.accepted, "the daemon never tried CloudWatch Logs"
        count = len(_reports(reports))
        _wait_reports(reports, count + 3, timeout=8)     # a send is hanging meanwhile
    finally:
        code, took, err = _stop(proc)
        notify.close()
        hang.close()
    assert code == 0, err
    assert took < 10, f"stop took {took:.1f} s"
    produced = _reports(reports)
    gaps = [b - a for a, b in zip(_report_times(produced), _report_times(produced)[1:])]
    assert max(gaps) < 3.0, gaps                         # 1 s interval; 31 s before issue 9
    watchdogs = [t for t, m in notify.messages if m == "WATCHDOG=1"]
    assert len(watchdogs) >= 3
    assert max(b - a for a, b in zip(watchdogs, watchdogs[1:])) < 2.0
    up = CloudWatchLogsSink(lambda: make_client("logs", "eu-west-1", env.moto.endpoint_url,
                                                max_attempts=1), group, stream, spool)
    assert up.drain(30)
    up.close()
    events = make_client("logs", "eu-west-1", env.moto.endpoint_url).get_log_events(
        logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [json.loads(e["message"])["run_id"] for e in events] == [r["run_id"] for r in produced]


def test_canaries_are_swept_at_start_with_the_configured_age(env: LocalEnvironment,
                                                             tmp_path: Path) -> None:
    """The daemon deletes canaries older than transfer.stale_canary_seconds when it starts, even
    when no transfer runs (here the only target does not resolve); younger ones and other keys
    stay."""
    import datetime
    import uuid

    import boto3
    from moto.backends import get_backend
    from s3_route_agent.devenv.localenv.moto_patches import ACCOUNT_ID
    bucket = f"sweep-{uuid.uuid4().hex[:12]}"
    prefix = f"s3-route-agent/canary/{uuid.uuid4().hex[:8]}/"
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=env.moto.endpoint_url)
    s3.create_bucket(Bucket=bucket,
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key in (f"{prefix}killed-run", f"{prefix}recent", "not-a-canary"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    keys = get_backend("s3")[ACCOUNT_ID]["global"].buckets[bucket].keys
    keys[f"{prefix}killed-run"].last_modified -= datetime.timedelta(minutes=20)
    keys[f"{prefix}recent"].last_modified -= datetime.timedelta(minutes=5)
    keys["not-a-canary"].last_modified -= datetime.timedelta(hours=5)
    config = env.write_config(
        tmp_path / "c.yaml", [{"name": "nowhere", "host": "nothing.example", "expect": "any"}],
        buckets=[bucket], daemon={"interval_seconds": 0.1, "jitter_seconds": 0},
        transfer={"enabled": True, "bucket": bucket, "prefix": prefix, "size_bytes": 16,
                  "stale_canary_seconds": 600},
        outputs={"file": {"path": str(tmp_path / "r.jsonl")}})
    daemon = Daemon(str(config), max_cycles=1, notifier=SdNotifier({}),
                    deps_factory=TransfersTo(env.moto.endpoint_url).check_deps)
    assert daemon.run() == 0
    deadline = time.monotonic() + 20
    while f"{prefix}killed-run" in _canaries(env, bucket, prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _canaries(env, bucket, prefix) == [f"{prefix}recent"]
    assert "not-a-canary" in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    (report,) = _reports(tmp_path / "r.jsonl")
    assert report["targets"][0]["path"] == "unresolved"   # no transfer ran: the start swept
    assert not report["targets"][0].get("transfer")
