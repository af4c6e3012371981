"""Which capability lets an unprivileged agent map another user's sockets to processes?

Run as root (it needs setpriv(1) to start processes as other uids with chosen capabilities):

    python tests/collectors/cap_experiment.py [--json]

It starts two socket-holding targets (no traffic; an unconnected TCP socket has an inode too):
``other``, uid 1001, an ordinary (dumpable) process of another user; ``nodump``, uid 1002, the
observer's own uid but made non-dumpable with prctl(PR_SET_DUMPABLE, 0), as setuid programs and
many daemons are (its /proc/PID/* is then owned by root). Then, as uid 1002 with each set of
ambient capabilities, it tries (1) listing /proc/PID/fd, (2) readlink of the fd holding the
socket, (3) the agent's InodeMapper. Prints a table (``--json``: the rows). Exit 77 when this
Python cannot run as another uid. Targets are ended by their PID, always.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

TARGET = r"""
import ctypes, os, socket, sys, time
if sys.argv[1] == "nodump":
    ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)   # PR_SET_DUMPABLE = 4
s = socket.socket()
print(os.getpid(), s.fileno(), os.fstat(s.fileno()).st_ino, flush=True)
time.sleep(120)
"""

PROBE = r"""
import errno, json, os, sys
from s3_route_agent.collectors.processes import InodeMapper
pid, fd, inode = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = {}
with open("/proc/self/status") as f:
    out["CapEff"] = [l.split()[1] for l in f if l.startswith("CapEff")][0]
for name, fn in (("listdir", lambda: os.listdir(f"/proc/{pid}/fd")),
                 ("readlink", lambda: os.readlink(f"/proc/{pid}/fd/{fd}"))):
    try:
        fn()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
found, problems = InodeMapper(skip_pids=[os.getpid()]).map([inode])
out["mapped"] = inode in found and found[inode].pid == pid
out["problems"] = problems
print(json.dumps(out))
"""

CAPSETS = ["", "dac_read_search", "sys_ptrace", "dac_read_search,sys_ptrace", "dac_override",
           "dac_override,sys_ptrace", "dac_read_search,perfmon"]


def setpriv(uid: int, caps: str) -> list[str]:
    """setpriv(1) arguments: run as ``uid`` with exactly the ambient capabilities ``caps``."""
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    if caps:
        plus = ",".join("+" + c for c in caps.split(","))
        cmd += [f"--inh-caps={plus}", f"--ambient-caps={plus}"]
    else:
        cmd += ["--inh-caps=-all"]
    return cmd


def main() -> int:
    """Run the experiment (see the module docstring)."""
    if os.geteuid() != 0:
        raise SystemExit("run as root (setpriv to other uids)")
    probe = subprocess.run(setpriv(1001, "") + [sys.executable, "-c",
                                                "import s3_route_agent.collectors.processes"],
                           capture_output=True, text=True, timeout=60, cwd="/")
    if probe.returncode:
        print(f"{sys.executable} does not run as uid 1001 with the agent importable: "
              f"{probe.stderr.strip()[-300:]}", file=sys.stderr)
        return 77
    targets = {}
    procs = []
    try:
        for name, uid in (("other", 1001), ("nodump", 1002)):
            p = subprocess.Popen(setpriv(uid, "") + [sys.executable, "-c", TARGET, name],
                                 stdout=subprocess.PIPE, text=True, cwd="/")
            procs.append(p)
            assert p.stdout is not None
            pid, fd, inode = p.stdout.readline().split()
            targets[name] = (pid, fd, inode)
        rows = []
        for caps in CAPSETS:
            for name, (pid, fd, inode) in targets.items():
                r = subprocess.run(setpriv(1002, caps) + [sys.executable, "-c", PROBE, pid, fd,
                                                          inode],
                                   capture_output=True, text=True, timeout=60, cwd="/")
                if r.returncode:
                    raise SystemExit(r.stderr)
                row = json.loads(r.stdout)
                row.update(caps=caps or "(none)", target=name)
                rows.append(row)
        if "--json" in sys.argv:
            print(json.dumps(rows, indent=1))
        else:
            print(f"{'capabilities of uid 1002':30} {'target':7} {'CapEff':17} {'listdir':8} "
                  f"{'readlink':8} mapped")
            for row in rows:
                print(f"{row['caps']:30} {row['target']:7} {row['CapEff']:17} "
                      f"{row['listdir']:8} {row['readlink']:8} {row['mapped']}")
    finally:
        for p in procs:
            p.kill()   # by PID (Popen.kill sends SIGKILL to p.pid)
            p.wait()
            if p.stdout is not None:
                p.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
