"""The units under a real systemd: /lib/systemd/systemd boots as PID 1 in fresh namespaces and
runs s3-route-agent.service and s3-route-agent-check.service, installed unchanged.

The sandbox: new pid, mount, net (loopback only), cgroup and uts namespaces; the root is an
overlay of the machine's root with a tmpfs upper layer, so every write (units, users, state,
logs) lands in memory that disappears with the mount namespace and nothing touches the host. The
local environment (moto, DNS, IMDS emulator) is started inside the same network namespace, on
its 127.0.0.1, and is all the agent talks to. The application is a launcher at the units'
ExecStart path that runs this checkout with the system python and this venv's site-packages
(/root, where pyenv lives, is hidden by ProtectHome=yes). Both are bind-mounted read-only under
/opt/s3-route-agent/lib in the sandbox, wherever the checkout is: a clone under /tmp (a fresh
tmpfs in the sandbox), under a 0700 directory or under /root would otherwise be out of the
service user's reach.

Teardown: SIGRTMIN+4 (poweroff) to the sandbox's PID 1, then SIGKILL by that PID, which ends
every process of its pid namespace; processes are only ever addressed by their PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
SYSTEMD = Path("/lib/systemd/systemd")
EXEC_START = "/opt/s3-route-agent/bin/s3-route-agent"
CONFIG = "/etc/s3-route-agent/config.yaml"
SYSTEM_PYTHON = Path("/usr/bin/python3")
# Where the sandbox sees this checkout's package and this venv's site-packages (bind mounts).
SANDBOX_LIB = "/opt/s3-route-agent/lib"
SANDBOX_SITE = SANDBOX_LIB + "/site-packages"
CAP_NET_RAW = 1 << 13  # capability number 13 (linux/capability.h)

BOOT = r"""
set -eu
T=$1; PAYLOAD=$2; AGENT=$3; PURELIB=$4; ASSETS=$5
mount -t tmpfs -o mode=0755 s3ra-sandbox "$T"
mkdir -p "$T/upper" "$T/work" "$T/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$T/root"
R=$T/root
mount -t tmpfs -o mode=0755,nosuid dev "$R/dev"
for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs shm "$R/dev/shm"
mount -t proc proc "$R/proc"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=0755 run "$R/run"
mount -t tmpfs -o mode=1777 tmp "$R/tmp"
ip link set lo up
cp -a "$PAYLOAD/." "$R/"
# The checkout's package, the venv's site-packages and the test's helper scripts, read-only.
L=$R/opt/s3-route-agent/lib
for pair in "$AGENT:$L/s3_route_agent" "$PURELIB:$L/site-packages" "$ASSETS:$L/test-assets"; do
  src=${pair%%:*}; dst=${pair#*:}
  mkdir -p "$dst"; mount --bind "$src" "$dst"; mount -o remount,bind,ro "$dst"
done
# What the package's postinst does: the user from the shipped sysusers file.
chroot "$R" systemd-sysusers /usr/lib/sysusers.d/s3-route-agent.conf
chroot "$R" useradd --system --no-create-home cwagent
chroot "$R" usermod -aG s3-route-agent cwagent
chroot "$R" install -d -m 0775 -g s3-route-agent /var/lib/prometheus/node-exporter
# Nothing else of the machine's own services starts in the sandbox.
chroot "$R" systemctl set-default multi-user.target >/dev/null 2>&1 || true
for u in $(cd "$R/etc/systemd/system/multi-user.target.wants" 2>/dev/null && ls); do
  rm -f "$R/etc/systemd/system/multi-user.target.wants/$u"
done
cd "$R"; mkdir -p .s3ra-old; pivot_root . .s3ra-old; umount -l /.s3ra-old; rmdir /.s3ra-old
exec /lib/systemd/systemd
"""


def _cannot_boot() -> str | None:
    if os.geteuid() != 0:
        return "needs root (namespaces, overlay, mounts)"
    if not SYSTEMD.exists():
        return f"{SYSTEMD} missing (make test installs systemd)"
    for tool in ("unshare", "nsenter", "ip", "useradd", "systemd-sysusers"):
        if shutil.which(tool) is None:
            return f"{tool} missing"
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} missing"
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
                           capture_output=True, text=True, timeout=30)
    if probe.stdout.strip() != str(tuple(sys.version_info[:2])):
        return (f"{SYSTEM_PYTHON} is Python {probe.stdout.strip()}, this venv "
                f"{sys.version_info[:2]}: the launcher reuses the venv's site-packages")
    check = subprocess.run(["unshare", "--mount", "--pid", "--net", "--cgroup", "--uts",
                            "--fork", "true"], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        return f"cannot make namespaces: {check.stderr.strip()}"
    return None


SKIP = _cannot_boot()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=f"cannot boot systemd here: {SKIP}")


class Sandbox:
    """systemd as PID 1 in its namespaces; commands run inside with nsenter."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None
        self.pid1: int | None = None

    def payload(self) -> Path:
        root = self.workdir / "payload"
        units = root / "etc" / "systemd" / "system"
        units.mkdir(parents=True)
        for unit in ("s3-route-agent.service", "s3-route-agent-check.service",
                     "s3-route-agent-check.timer"):
            shutil.copy2(UNITS / unit, units / unit)  # unchanged
        sysusers = root / "usr" / "lib" / "sysusers.d"
        sysusers.mkdir(parents=True)
        shutil.copy2(UNITS / "s3-route-agent.sysusers", sysusers / "s3-route-agent.conf")
        launcher = root / EXEC_START.lstrip("/")
        launcher.parent.mkdir(parents=True)
        launcher.write_text(textwrap.dedent(f"""\
            #!{SYSTEM_PYTHON} -s
            import site, sys
            sys.path.insert(0, {SANDBOX_LIB!r})
            site.addsitedir({SANDBOX_SITE!r})
            from s3_route_agent.cli import main
            sys.exit(main())
            """))
        launcher.chmod(0o755)
        (root / "etc" / "s3-route-agent").mkdir(parents=True)
        return root

    def boot(self) -> None:
        target = self.workdir / "mnt"
        target.mkdir()
        script = self.workdir / "boot.sh"
        script.write_text(BOOT)
        self.log = open(self.workdir / "console.log", "w")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--net", "--cgroup", "--uts", "--fork",
             "--kill-child", "--propagation", "private", "sh", str(script), str(target),
             str(self.payload()), str(ROOT / "agent"), sysconfig.get_paths()["purelib"],
             str(Path(__file__).parent)], stdout=self.log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while self.pid1 is None and time.monotonic() < deadline:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            if pids and Path(f"/proc/{pids[0]}/exe").resolve() == SYSTEMD.resolve():
                self.pid1 = int(pids[0])
            elif self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if self.pid1 is None:
            raise AssertionError("systemd did not start: "
                                 + (self.workdir / "console.log").read_text()[-2000:])
        state = ""
        while time.monotonic() < deadline + 30:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.3)
        raise AssertionError(f"systemd did not finish booting: {state}")

    def command(self, *argv: str) -> list[str]:
        assert self.pid1 is not None
        return ["nsenter", "--target", str(self.pid1), "--mount", "--pid", "--net", "--uts",
                "--cgroup", "--root", "--wd=/", *argv]

    def run(self, *argv: str, check: bool = True, timeout: float = 60,
            ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.command(*argv), capture_output=True, text=True,
                                timeout=timeout)
        if check:
            assert result.returncode == 0, f"{argv}: {result.stdout} {result.stderr}"
        return result

    def show(self, unit: str, *props: str) -> dict[str, str]:
        # TZ=UTC: timestamps such as NextElapseUSecRealtime are printed in UTC.
        out = self.run("env", "TZ=UTC", "systemctl", "show", unit,
                       *[f"--property={p}" for p in props]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def read(self, path: str) -> str:
        return self.run("cat", path).stdout

    def stop(self) -> None:
        if self.pid1 is not None:
            try:
                os.kill(self.pid1, signal.SIGRTMIN + 4)  # systemd: poweroff
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                # A clean poweroff first; the rest of its shutdown (journald flushing a journal
                # that vanishes anyway) is not worth more than a few seconds of the suite.
                self.proc.wait(timeout=4)
            except subprocess.TimeoutExpired:
                if self.pid1 is not None:
                    try:
                        os.kill(self.pid1, signal.SIGKILL)  # ends its whole pid namespace
                    except ProcessLookupError:
                        pass
                self.proc.kill()
                self.proc.wait(timeout=20)
        if self.pid1 is not None:
            deadline = time.monotonic() + 15  # the namespace's last exits after SIGKILL
            while Path(f"/proc/{self.pid1}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path_factory.mktemp("systemd-boot"))
    try:
        box.boot()
        yield box
    finally:
        box.stop()
        assert box.pid1 is None or not Path(f"/proc/{box.pid1}").exists()


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_units_under_a_real_systemd(sandbox: Sandbox) -> None:
    """One scenario, in the order an operator meets it (each step needs the one before)."""
    # The sandbox has loopback only: nothing the agent does can leave it.
    links = sandbox.run("ip", "-o", "link").stdout
    assert [ln.split(":")[1].strip() for ln in links.splitlines()] == ["lo"], links
    assert sandbox.run("ip", "route", "show", "default").stdout.strip() == ""

    # Fake credentials and no real instance metadata for every unit, through the sandbox
    # manager's environment (the unit files stay unchanged; on EC2 the instance role serves).
    from s3_route_agent.devenv.localenv.environment import SAFE_ENVIRONMENT
    sandbox.run("systemctl", "set-environment", "AWS_CONFIG_FILE=/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
                *[f"{k}={v}" for k, v in SAFE_ENVIRONMENT.items()])

    # 1. A config that cannot be loaded: exit 78 (EX_CONFIG), and no restart is scheduled.
    sandbox.run("sh", "-c", f"echo 'dns: {{prot: 1}}' > {CONFIG}")
    start = sandbox.run("systemctl", "start", "s3-route-agent.service", check=False)
    assert start.returncode != 0
    failed = sandbox.show("s3-route-agent.service", "ActiveState", "SubState",
                          "ExecMainStatus", "NRestarts")
    assert failed["ExecMainStatus"] == "78", failed
    assert (failed["ActiveState"], failed["SubState"]) == ("failed", "failed"), failed
    time.sleep(1)
    assert sandbox.show("s3-route-agent.service", "NRestarts")["NRestarts"] == "0"
    sandbox.run("systemctl", "reset-failed", "s3-route-agent.service")

    # 2. The local environment inside the sandbox's network namespace writes the real config.
    env = subprocess.Popen(sandbox.command(str(SYSTEM_PYTHON), "-s", "-c",
                                           "import site, runpy, sys; "
                                           f"sys.path.insert(0, {SANDBOX_LIB!r}); "
                                           f"site.addsitedir({SANDBOX_SITE!r}); "
                                           f"sys.argv = ['serve', {CONFIG!r}]; "
                                           f"runpy.run_path({SANDBOX_LIB + '/test-assets/serve_localenv.py'!r}, run_name='__main__')"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert env.stdout is not None
        line = env.stdout.readline()
        assert line.strip() == "serving", env.stderr.read() if env.poll() is not None else line
        _scenario(sandbox)
    finally:
        env.terminate()
        try:
            env.wait(timeout=15)
        except subprocess.TimeoutExpired:
            env.kill()
            env.wait(timeout=15)


def _elapse(text: str) -> float:
    """A ``systemctl show`` timestamp in UTC ("Wed 2026-12-02 14:16:12 UTC") as epoch seconds."""
    import datetime
    assert text.endswith(" UTC"), text
    when = datetime.datetime.strptime(text[:-4], "%a %Y-%m-%d %H:%M:%S")
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def _scenario(sandbox: Sandbox) -> None:
    daemon = "s3-route-agent.service"
    # 3. READY: `systemctl start` of a Type=notify unit returns once READY=1 arrived.
    sandbox.run("systemctl", "start", daemon, timeout=90)
    shown = sandbox.show(daemon, "ActiveState", "SubState", "MainPID", "User", "WatchdogUSec",
                         "NRestarts")
    assert (shown["ActiveState"], shown["SubState"]) == ("active", "running"), shown
    assert shown["User"] == "s3-route-agent" and shown["WatchdogUSec"] == "1min"
    pid = shown["MainPID"]

    # 4. CAP_NET_RAW only: effective, permitted and bounding sets of the main process.
    status = dict(ln.split(":\t", 1) for ln in sandbox.read(f"/proc/{pid}/status").splitlines()
                  if ":\t" in ln)
    for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(status[key], 16) == CAP_NET_RAW, (key, status[key])
    assert status["NoNewPrivs"].strip() == "1"
    uid = sandbox.run("id", "-u", "s3-route-agent").stdout.strip()
    assert status["Uid"].split()[0] == uid != "0"

    # 5. Cycles run: STATUS= carries a status, the watchdog is fed, reports and state are written
    # under the sandbox's /var/log and /var/lib, readable by the CloudWatch agent's user.
    reports = "/var/log/s3-route-agent/reports.jsonl"
    _wait(lambda: sandbox.run("test", "-s", reports, check=False).returncode == 0, 60,
          "the first report")
    text = sandbox.show(daemon, "StatusText")["StatusText"]
    assert "CRITICAL" in text or "OK" in text or "WARNING" in text, text
    first_ping = sandbox.show(daemon, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]
    assert int(first_ping) > 0
    report = json.loads(sandbox.read(reports).splitlines()[0])
    assert report["identity"]["source"] == "imds" and report["targets"]
    assert not report["errors"], report["errors"]
    listing = sandbox.run("stat", "-c", "%U:%G %a %n", "/var/log/s3-route-agent", reports,
                          "/var/lib/s3-route-agent").stdout.split("\n")
    assert listing[0].startswith("s3-route-agent:s3-route-agent 750 ")
    assert listing[1].startswith("s3-route-agent:s3-route-agent 640 ")
    assert listing[2].startswith("s3-route-agent:s3-route-agent 700 ")
    # Not a DynamicUser's /var/lib/private symlink: one directory both units share.
    assert sandbox.run("test", "-L", "/var/lib/s3-route-agent", check=False).returncode != 0
    state = sandbox.run("ls", "/var/lib/s3-route-agent").stdout.split()
    assert "inventory.json" in state or any(n.startswith("inventory") for n in state), state
    assert sandbox.run("runuser", "-u", "cwagent", "--", "head", "-c", "1", reports
                       ).stdout == "{"
    prom = sandbox.read("/var/lib/prometheus/node-exporter/s3-route-agent.prom")
    assert "probe_success" in prom

    # 6. Both units side by side: the one-shot check runs while the daemon runs, as the same user
    # on the same state directory; its JSON is a journal line of its own (stdout flushed).
    sandbox.run("systemctl", "start", "s3-route-agent-check.service", timeout=120)
    check = sandbox.show("s3-route-agent-check.service", "Result", "ExecMainStatus",
                         "ActiveState", "User")
    assert check["Result"] == "success" and check["ActiveState"] == "inactive", check
    assert check["User"] == "s3-route-agent"
    journal = sandbox.run("journalctl", "-u", "s3-route-agent-check.service", "-o", "cat",
                          "--no-pager").stdout.splitlines()
    documents = [json.loads(ln) for ln in journal if ln.startswith("{")]
    # WARNING and CRITICAL (the local world's legacy global names) are results, not failures.
    assert documents and documents[-1]["exit_code"] in (0, 1, 2), journal
    assert sandbox.show(daemon, "ActiveState")["ActiveState"] == "active"
    assert sandbox.show(daemon, "MainPID")["MainPID"] == pid

    # 7. The timer: enabled, it schedules the one-shot check service within the 5-minute
    # calendar step plus the randomized delay, at the same per-host offset after a restart
    # (FixedRandomDelay: the fleet stays spread). Its real firing lies minutes away.
    sandbox.run("systemctl", "enable", "--now", "s3-route-agent-check.timer")
    timer = sandbox.show("s3-route-agent-check.timer", "ActiveState", "Triggers",
                         "NextElapseUSecRealtime", "UnitFileState")
    assert timer["ActiveState"] == "active" and timer["Triggers"] == "s3-route-agent-check.service"
    assert timer["UnitFileState"] == "enabled"
    next_run = _elapse(timer["NextElapseUSecRealtime"])
    now = time.time()
    assert now < next_run <= now + (5 + 4) * 60 + 5, timer
    sandbox.run("systemctl", "restart", "s3-route-agent-check.timer")
    again = _elapse(sandbox.show("s3-route-agent-check.timer", "NextElapseUSecRealtime")
                    ["NextElapseUSecRealtime"])
    assert again == next_run or again - next_run == 300  # the same offset (maybe the next slot)

    # 8. Reload: SIGHUP re-reads the config; same process, still active, the watchdog still fed.
    sandbox.run("systemctl", "reload", daemon)
    _wait(lambda: "reload" in sandbox.run("journalctl", "-u", daemon, "-o", "cat",
                                          "--no-pager").stdout.lower(), 20, "the reload")
    assert sandbox.show(daemon, "MainPID")["MainPID"] == pid
    _wait(lambda: sandbox.show(daemon, "WatchdogTimestampMonotonic")
          ["WatchdogTimestampMonotonic"] != first_ping, 40, "a later watchdog ping")

    # 9. Clean stop: exit 0 within TimeoutStopSec, nothing restarted.
    started = time.monotonic()
    sandbox.run("systemctl", "stop", daemon, timeout=60)
    stopped = sandbox.show(daemon, "Result", "ExecMainStatus", "ActiveState", "NRestarts")
    assert stopped == {"Result": "success", "ExecMainStatus": "0", "ActiveState": "inactive",
                       "NRestarts": "0"}, stopped
    assert time.monotonic() - started < 15
