"""``s3-route-agent run``: one check per interval as a systemd ``Type=notify`` service.

The loop lives in the main thread; each cycle runs :func:`s3_route_agent.runs.check.run_check` in a worker
thread so that the loop can keep its promises while a cycle hangs: WATCHDOG=1 every half of
``$WATCHDOG_USEC`` (sd_watchdog_enabled(3): "send ... before the time elapsed"), a cycle that
overruns ``cycle_timeout_seconds`` is abandoned and reported UNKNOWN, SIGTERM abandons the
current step within ``stop_timeout_seconds`` (< 10 s), SIGHUP reloads the config. Each step of a
cycle (identity, every DNS name, S3 ranges) has its own timeout; the EC2 step is bounded by
botocore's connect/read timeouts and attempts. If abandoned cycles pile up (threads stuck in a
syscall), the loop stops feeding the watchdog so systemd restarts the service.

Stopping never leaves a canary behind: the test transfer announces each canary in
:data:`s3_route_agent.live.canary.IN_FLIGHT` before its PUT; on SIGTERM the cycle gets the stop timeout (less
when a canary is in flight, so that its DELETE still fits), then a cleanup hook DELETEs whatever is
still announced, bounded so that stop, cleanup and the sinks' flush stay within the issue's 10 s.

The first cycle starts at the host's stable phase too (not at once), so a fleet restarted
together (a config push, an AMI roll) does not refresh its inventory in the same second: the
shared EC2 Describe budget is per account and region (see the README). READY=1 still waits for
the first cycle to start, as the issue asks (so ``systemctl start`` returning means the agent is
checking); while it waits, EXTEND_TIMEOUT_USEC= keeps systemd's start timeout from firing when the
phase is longer than TimeoutStartSec= (sd_notify(3), "EXTEND_TIMEOUT_USEC=").

With ``flow_logs.enabled`` each cycle also collects the finished flow-log queries of earlier
runs into its report and starts one for its own transfer window (:class:`CycleCorroboration`);
it never waits for an answer.

sd_notify is a small own implementation of the datagram protocol (sd_notify(3)): one
``AF_UNIX``/``SOCK_DGRAM`` datagram per message to ``$NOTIFY_SOCKET``, ``@`` meaning the abstract
namespace. Chosen over the ``sdnotify`` package: it is a dozen lines, adds no dependency, and
handles abstract sockets and ``WATCHDOG_PID``, which that package does not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from s3_route_agent.collectors.flow_logs import CycleCorroboration
from s3_route_agent.config import AgentConfig, load_effective_config
from s3_route_agent.engine.model import DnsAnswer, DnsFailure, Status
from s3_route_agent.errors import AgentError, ConfigError
from s3_route_agent.live.canary import IN_FLIGHT
from s3_route_agent.live.transfer import sweep_stale_canaries
from s3_route_agent.redact import redact
from s3_route_agent.report.document import Report, unknown_report
from s3_route_agent.runs.check import CheckDeps, CheckResult, run_check, with_flow_logs
from s3_route_agent.sinks import FanOut

logger = logging.getLogger(__name__)

# sysexits.h EX_CONFIG; systemd names exit status 78 "CONFIG" (systemd.exec(5), "Process Exit
# Codes"). The unit's RestartPreventExitStatus=78 keeps a broken config from restart-looping.
EXIT_CONFIG = 78
MAX_STUCK_CYCLES = 3
_MAX_STATUS = 200
# Issue 5 section 1: on SIGTERM abandon the current step, delete the canary and flush the sinks
# within 10 s (the unit's TimeoutStopSec=15 is systemd's hard limit behind it).
STOP_BUDGET_SECONDS = 10.0
SINK_RESERVE_SECONDS = 1.0      # of the budget, kept for closing (flushing) the sinks
EXIT_MARGIN_SECONDS = 0.3       # of the budget, kept for the process's own exit
RELOAD_SINK_CLOSE_SECONDS = 0.5
CANARY_RESERVE_SECONDS = 3.0    # of the budget, kept for deleting canaries in flight
# Added to the first cycle's phase in EXTEND_TIMEOUT_USEC=: time to load and start the cycle.
START_MARGIN_SECONDS = 30.0


class SdNotifier:
    """Sends sd_notify(3) messages; a no-op when ``$NOTIFY_SOCKET`` is unset."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from ``environ`` (default os.environ)."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or ""
        self.address: str | None = None
        if address:
            # "@" starts an abstract-namespace address (sd_notify(3), NOTES).
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        enabled = bool(usec and usec.isdigit() and int(usec) > 0
                       and (not pid or pid == str(os.getpid())))
        # Half the timeout, as sd_watchdog_enabled(3) recommends.
        self.watchdog_interval: float | None = int(usec) / 2e6 if enabled and usec else None

    def notify(self, *assignments: str) -> bool:
        """Send ``VAR=value`` lines as one datagram; False when there is no socket or it failed."""
        if not self.address:
            return False
        message = "\n".join(a.replace("\n", " ") for a in assignments).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self.address)
            return True
        except OSError as exc:
            logger.warning("sd_notify to %s failed: %s", self.address.lstrip("\0"), exc)
            return False

    def status(self, text: str) -> bool:
        """STATUS= (one line, bounded)."""
        line = " ".join(text.split())
        return self.notify("STATUS=" + (line if len(line) <= _MAX_STATUS
                                        else line[:_MAX_STATUS - 3] + "..."))

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def host_phase(jitter_seconds: float, seed: str | None = None) -> float:
    """A stable per-host offset in [0, jitter_seconds): spreads a fleet's cycles (and so its EC2
    calls) over the interval, and stays the same across restarts (machine-id(5), else hostname)."""
    if jitter_seconds <= 0:
        return 0.0
    if seed is None:
        try:
            seed = Path("/etc/machine-id").read_text("ascii").strip()
        except OSError:
            seed = ""
        seed = seed or socket.gethostname()
    digest = hashlib.sha256(("s3-route-agent:" + seed).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 * jitter_seconds


class StepTimeout(AgentError):
    """A step of a cycle ran past its timeout (or the daemon is stopping)."""


class _StepJob:
    """One step handed to a worker: its function, and its outcome once done."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.box: dict[str, Any] = {}


class _StepWorkers:
    """Threads that run steps, kept between steps (issue 13: a new thread per step cost about
    half a millisecond of CPU, seven times a cycle). A step takes an idle worker, or a new one
    when none is idle, so a step stuck in a blocking call (left behind by its caller) never
    delays another: it only keeps its own worker busy. At most ``MAX_IDLE`` idle workers are
    kept; a worker finding the idle list full ends."""

    MAX_IDLE = 8

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue[_StepJob]] = []
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], Any], what: str) -> _StepJob:
        """Start ``fn`` on a worker; the job's ``done`` is set when it has finished."""
        job = _StepJob(fn)
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(inbox,), name=f"step:{what}",
                             daemon=True).start()
        inbox.put(job)
        return job

    def _work(self, inbox: queue.SimpleQueue[_StepJob]) -> None:
        while True:
            job = inbox.get()
            try:
                job.box["value"] = job.fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.box["error"] = exc
            with self._lock:
                # Idle again before the caller hears of it, so its next step finds this worker.
                keep = len(self._idle) < self.MAX_IDLE
                if keep:
                    self._idle.append(inbox)
            job.done.set()
            if not keep:
                return


_STEP_WORKERS = _StepWorkers()


def call_with_timeout(fn: Callable[[], Any], timeout: float, what: str,
                      cancel: threading.Event | None = None) -> Any:
    """``fn()`` in a helper thread; StepTimeout after ``timeout`` s or as soon as ``cancel`` is set.

    A thread cannot be killed: a step stuck in a blocking call is left behind (its worker stays
    busy) and its result dropped. The timeouts of the collectors themselves normally end it soon
    after.
    """
    job = _STEP_WORKERS.run(fn, what)
    deadline = time.monotonic() + timeout
    while not job.done.is_set():
        if cancel is not None and cancel.is_set():
            raise StepTimeout("stopping", f"{what}: abandoned, the agent is stopping")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StepTimeout("timeout", f"{what}: no answer within {timeout:g} s")
        job.done.wait(min(remaining, 0.2))
    if "error" in job.box:
        raise job.box["error"]
    return job.box.get("value")


def deps_with_timeouts(deps: CheckDeps, timeout: float, cancel: threading.Event) -> CheckDeps:
    """``deps`` whose identity, DNS and S3-ranges steps each get ``timeout`` seconds."""
    def identity() -> Any:
        return call_with_timeout(deps.identity, timeout, "identity (IMDS)", cancel)

    def resolve(host: str) -> DnsAnswer:
        try:
            return call_with_timeout(lambda: deps.resolve(host), timeout, f"DNS {host}", cancel)
        except StepTimeout as exc:
            return DnsAnswer(host=host, addresses=(),
                             failure=DnsFailure(kind="timeout", message=exc.message))

    def s3_ranges() -> Any:
        return call_with_timeout(deps.s3_ranges, timeout, "S3 address ranges", cancel)

    return replace(deps, identity=identity, resolve=resolve, s3_ranges=s3_ranges)


def cycle_failure_report(reason: str, started: float) -> Report:
    """An UNKNOWN report for a cycle that produced none (crashed, timed out or abandoned)."""
    return unknown_report(reason, started, time.time(), uuid.uuid4().hex)


@dataclass
class _Cycle:
    """One running cycle: its worker thread and, when done, its report."""

    number: int
    started_wall: float
    deadline: float
    thread: threading.Thread
    report: Report | None = None
    status: Status | None = None


class Daemon:
    """The ``run`` loop (see the module docstring)."""

    def __init__(self, config_path: str | None, max_cycles: int | None = None,
                 notifier: SdNotifier | None = None,
                 deps_factory: Callable[[AgentConfig], CheckDeps] | None = None,
                 sinks_factory: Callable[[AgentConfig], FanOut] | None = None,
                 host_seed: str | None = None,
                 flowlogs_factory: Callable[[AgentConfig], CycleCorroboration | None] | None = None,
                 ) -> None:
        """Prepare; nothing runs until :meth:`run`. The factories build, per (re)loaded config,
        the collectors, the sinks and the flow-log step; by default :mod:`s3_route_agent.wiring`'s.
        ``host_seed`` replaces the machine id in the phase (tests)."""
        from s3_route_agent import wiring
        self.config_path = config_path
        self.max_cycles = max_cycles
        self.notifier = notifier or SdNotifier()
        self._deps_factory = deps_factory or wiring.build_check_deps
        self._sinks_factory = sinks_factory or wiring.build_report_sinks
        self._stop = threading.Event()      # SIGTERM/SIGINT or max_cycles
        self._cancel = threading.Event()    # tells running steps to give up
        self._wake = threading.Event()
        self._reload = False
        self.cycles_done = 0
        self.stuck: list[threading.Thread] = []
        self._host_seed = host_seed
        self._flowlogs_factory = flowlogs_factory or wiring.build_flow_logs
        self._cleanup_deadline: float | None = None
        self.cleanup_hooks: list[Callable[[AgentConfig], None]] = [self._delete_canaries]
        self.last_status: Status | None = None
        self.last_summary = ""

    # -- signals -----------------------------------------------------------------------------

    def _on_term(self, signum: int, _frame: Any) -> None:
        logger.info("signal %s: stopping", signal.Signals(signum).name)
        self._stop.set()
        self._wake.set()

    def _on_hup(self, _signum: int, _frame: Any) -> None:
        self._reload = True
        self._wake.set()

    # -- setup -------------------------------------------------------------------------------

    def _apply(self, config: AgentConfig) -> None:
        old_traffic = self.deps.traffic if hasattr(self, "deps") else None
        self.config = config
        self.deps = deps_with_timeouts(self._deps_factory(config),
                                       config.daemon.step_timeout_seconds, self._cancel)
        if old_traffic is not None:
            old_traffic.close()
        if self.deps.traffic is not None:
            # The DNS sniffer (probes on) keeps listening between cycles.
            self.deps.traffic.keep_sniffing = True
        self.sinks = self._sinks_factory(config)
        self.phase = host_phase(config.daemon.jitter_seconds, self._host_seed)
        self.flowlogs = self._flowlogs_factory(config)

    def _do_reload(self) -> None:
        self._reload = False
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            config = load_effective_config(self.config_path)
            old_sinks = self.sinks
            self._apply(config)
            # Bounded: the loop (and the watchdog) must not wait on a slow CloudWatch; the new
            # sinks share the spool and send what the old ones left.
            old_sinks.close(timeout=RELOAD_SINK_CLOSE_SECONDS)
            logger.info("reloaded %s", self.config_path)
            self.notifier.notify("READY=1", self._status_line("config reloaded"))
        except AgentError as exc:
            message = f"reload failed, keeping the previous config: {exc.message}"
            logger.error("%s", message)
            self.notifier.notify("READY=1", "STATUS=" + message[:_MAX_STATUS])
        except Exception as exc:  # noqa: BLE001 - never die on a reload
            message = (f"reload failed, keeping the previous config: "
                       f"{type(exc).__name__}: {exc}")
            logger.error("%s", message)
            self.notifier.notify("READY=1", "STATUS=" + message[:_MAX_STATUS])

    def _status_line(self, extra: str = "") -> str:
        head = (f"{self.last_summary}" if self.last_summary else "starting")
        text = f"{head}; {extra}" if extra else head
        text = " ".join(text.split())
        return "STATUS=" + (text if len(text) <= _MAX_STATUS else text[:_MAX_STATUS - 3] + "...")

    # -- cycles ------------------------------------------------------------------------------

    def _start_cycle(self, number: int) -> _Cycle:
        config, deps, flowlogs = self.config, self.deps, self.flowlogs
        cycle = _Cycle(number=number, started_wall=time.time(),
                       deadline=time.monotonic() + config.daemon.cycle_timeout_seconds,
                       thread=threading.Thread())

        def work() -> None:
            try:
                result: CheckResult = run_check(config, deps)
                report = result.report
                if flowlogs is not None:
                    report = self._corroborate(flowlogs, report, cycle.started_wall, config)
                cycle.report, cycle.status = report, result.status
            except Exception as exc:  # noqa: BLE001 - one failing cycle never ends the daemon
                logger.error("cycle %d failed: %s: %s", number, type(exc).__name__, exc)
                cycle.report = cycle_failure_report(
                    f"internal error: {type(exc).__name__}: {exc}", cycle.started_wall)
                cycle.status = Status.UNKNOWN
            finally:
                self._wake.set()

        cycle.thread = threading.Thread(target=work, name=f"cycle-{number}", daemon=True)
        cycle.thread.start()
        return cycle

    def _corroborate(self, flowlogs: CycleCorroboration, report: Report,
                     started_wall: float, config: AgentConfig) -> Report:
        """The flow-log step of a cycle, bounded by the step timeout; the report as it stands
        when the step fails or overruns (the pending queries stay for the next cycle)."""
        ended = time.time()
        try:
            return call_with_timeout(
                lambda: with_flow_logs(flowlogs, report, started_wall, ended, ended),
                config.daemon.step_timeout_seconds, "flow-log corroboration", self._cancel)
        except StepTimeout as exc:
            logger.warning("%s", exc.message)
        except Exception as exc:  # noqa: BLE001 - corroboration never fails a cycle
            logger.error("flow-log corroboration failed: %s: %s", type(exc).__name__, exc)
        return report

    def _finish(self, report: Report, status: Status) -> None:
        self.sinks.emit(report)
        self.sinks.flush()
        self.cycles_done += 1
        self.last_status = status
        self.last_summary = redact(report.summary or status.name)
        self.notifier.notify(self._status_line(f"cycle {self.cycles_done}"))

    # -- main loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM (exit 0) or a config that cannot be loaded at start (exit 78)."""
        try:
            config = load_effective_config(self.config_path)
        except ConfigError as exc:
            logger.error("%s", exc.message)
            self.notifier.status(f"config error: {exc.message}")
            return EXIT_CONFIG
        self._apply(config)
        self._sweep_canaries_at_start()
        previous = {sig: signal.signal(sig, self._on_term) for sig in (signal.SIGTERM,
                                                                       signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        try:
            return self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.notifier.close()

    def _loop(self) -> int:
        start = time.monotonic()
        # The first cycle at the host's phase as well: slot 0 of start + phase + k*interval.
        next_due = start + self.phase
        # Say when the first cycle runs: a silent wait of up to jitter_seconds looks like a hang.
        if self.phase > 0:
            at = time.strftime("%H:%M:%S", time.localtime(time.time() + self.phase))
            logger.info("first cycle in %.1f s (at %s): the per-host offset under "
                        "daemon.jitter_seconds=%g spreads a fleet's EC2 calls; set it to 0 to "
                        "start at once", self.phase, at, self.config.daemon.jitter_seconds)
            extend = int((self.phase + START_MARGIN_SECONDS) * 1e6)
            self.notifier.notify(f"EXTEND_TIMEOUT_USEC={extend}", self._status_line(
                f"first cycle in {self.phase:.1f} s (per-host offset spreading the fleet)"))
        else:
            logger.info("first cycle starting now (daemon.jitter_seconds is 0)")
        number = 0
        current: _Cycle | None = None
        ready_sent = False
        watchdog = self.notifier.watchdog_interval
        next_ping = start
        while not self._stop.is_set():
            self._wake.clear()
            if self._reload and current is None:
                self._do_reload()
            now = time.monotonic()
            if current is None and now >= next_due:
                number += 1
                current = self._start_cycle(number)
                interval = self.config.daemon.interval_seconds
                # Slots at start + phase + k*interval; a slot missed by an overrun is skipped.
                k = max(1, int((now - start - self.phase) // interval) + 1)
                next_due = start + self.phase + k * interval
                if not ready_sent:
                    logger.info("first cycle started (then one every %g s)", interval)
                    # READY=1 once the config is loaded and the first cycle has started.
                    self.notifier.notify("READY=1", self._status_line("first cycle running"))
                    ready_sent = True
            if current is not None and current.report is not None:
                self._finish(current.report, current.status or Status.UNKNOWN)
                current = None
                if self.max_cycles is not None and self.cycles_done >= self.max_cycles:
                    self._stop.set()
                    break
            elif current is not None and now > current.deadline:
                timeout = self.config.daemon.cycle_timeout_seconds
                logger.error("cycle %d did not finish within %g s; abandoned", current.number,
                             timeout)
                self.stuck.append(current.thread)
                self._finish(cycle_failure_report(f"cycle timed out after {timeout:g} s",
                                                  current.started_wall), Status.UNKNOWN)
                current = None
            self.stuck = [t for t in self.stuck if t.is_alive()]
            now = time.monotonic()
            if watchdog and now >= next_ping:
                if len(self.stuck) < MAX_STUCK_CYCLES:
                    self.notifier.notify("WATCHDOG=1")
                else:
                    logger.error("%d abandoned cycles still running; letting the watchdog "
                                 "restart the service", len(self.stuck))
                next_ping = now + watchdog
            # The next slot matters only while no cycle runs: a slot already due during a long
            # cycle would make this wait 0 and the loop spin, starving the cycle of the GIL.
            waits = [1.0] if current is not None else [next_due - now, 1.0]
            if watchdog:
                waits.append(next_ping - now)
            if current is not None:
                waits.append(current.deadline - now)
            self._wake.wait(max(0.0, min(waits)))
        return self._shutdown(current)

    def _shutdown(self, current: _Cycle | None) -> int:
        stop_started = time.monotonic()
        cleanup_end = stop_started + STOP_BUDGET_SECONDS - SINK_RESERVE_SECONDS
        self._cleanup_deadline = cleanup_end
        self.notifier.notify("STOPPING=1", self._status_line("stopping"))
        if current is not None and current.report is None:
            # Give the running step the stop timeout, then abandon it (the worker is a daemon
            # thread; process exit ends it). With a canary in flight, stop waiting early enough
            # for its DELETE to fit in the budget.
            self._cancel.set()
            join_end = stop_started + self.config.daemon.stop_timeout_seconds
            while current.thread.is_alive():
                limit = join_end
                if len(IN_FLIGHT):
                    limit = min(limit, cleanup_end - CANARY_RESERVE_SECONDS)
                now = time.monotonic()
                if now >= limit:
                    break
                current.thread.join(min(0.1, limit - now))
        if current is not None and current.report is not None:
            self._finish(current.report, current.status or Status.UNKNOWN)
        elif current is not None:
            # No report is lost: the abandoned cycle still leaves one, saying why it has none.
            logger.warning("cycle %d abandoned at shutdown", current.number)
            self._finish(cycle_failure_report(f"cycle {current.number} abandoned: the agent was "
                                              "told to stop", current.started_wall),
                         Status.UNKNOWN)
        for hook in self.cleanup_hooks:
            try:
                hook(self.config)
            except Exception as exc:  # noqa: BLE001
                logger.error("cleanup %s failed: %s", getattr(hook, "__name__", hook), exc)
        # The sinks get what is left of the budget (each caps it further: CloudWatch Logs at
        # stop_flush_seconds); what CloudWatch does not take in time stays in the spool.
        self.sinks.close(timeout=max(0.0, stop_started + STOP_BUDGET_SECONDS
                                     - EXIT_MARGIN_SECONDS - time.monotonic()))
        if self.deps.traffic is not None:
            self.deps.traffic.close()
        logger.info("stopped after %d cycle(s) in %.1f s", self.cycles_done,
                    time.monotonic() - stop_started)
        return 0

    def _sweep_canaries_at_start(self) -> threading.Thread | None:
        """Delete the canaries older than ``transfer.stale_canary_seconds`` once at start (a
        killed run's), in the background: the first cycle may be a jitter away, and a slow S3
        must not hold up the start. Each transfer sweeps again before its PUT."""
        config, deps = self.config, self.deps
        if not (config.transfer.enabled and config.transfer.bucket):
            return None
        bucket = config.transfer.bucket

        def sweep() -> None:
            try:
                region = config.aws.region or deps.identity().region
                removed = sweep_stale_canaries(
                    region, bucket, config.transfer.prefix, client_for=deps.s3_client_for,
                    timeout=config.transfer.timeout_seconds,
                    max_age=config.transfer.stale_canary_seconds)
            except Exception as exc:  # noqa: BLE001 - the transfers sweep again
                logger.warning("canary sweep at start failed (%s: %s); each transfer sweeps "
                               "again", type(exc).__name__, exc)
                return
            if removed:
                logger.warning("removed %d stale canary object(s) older than %g s from "
                               "s3://%s/%s at start", removed,
                               config.transfer.stale_canary_seconds, bucket,
                               config.transfer.prefix)
            else:
                logger.info("canary sweep at start: nothing older than %g s under s3://%s/%s",
                            config.transfer.stale_canary_seconds, bucket,
                            config.transfer.prefix)

        thread = threading.Thread(target=sweep, name="canary-sweep", daemon=True)
        thread.start()
        return thread


    def _delete_canaries(self, _config: AgentConfig) -> None:
        """Cleanup hook: DELETE the canaries a transfer abandoned at stop left in flight."""
        if not len(IN_FLIGHT):
            return
        deadline = self._cleanup_deadline or time.monotonic() + CANARY_RESERVE_SECONDS
        remaining = max(0.2, deadline - time.monotonic())
        logger.warning("stopping with %d canary object(s) in flight; deleting them (%.1f s left)",
                       len(IN_FLIGHT), remaining)
        try:
            # Bounded here too: a new connection's name lookup has no botocore timeout.
            call_with_timeout(lambda: IN_FLIGHT.drain(deadline), remaining, "canary cleanup")
        except StepTimeout as exc:
            logger.error("%s; the next run's stale-canary sweep removes what is left", exc.message)


def run_daemon(config_path: str, max_cycles: int | None = None) -> int:
    """Entry point of ``s3-route-agent run``."""
    return Daemon(config_path, max_cycles=max_cycles).run()
