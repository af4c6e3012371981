"""Which process holds a socket: the ``socket:[INODE]`` links under ``/proc/PID/fd``.

Reading another user's (or a non-dumpable process's) links needs **both** ``CAP_DAC_READ_SEARCH``
(or ``CAP_DAC_OVERRIDE``; the ``fd`` directory is mode 0500, owned by the process's euid, or
root when it is not dumpable: ``proc_fd_permission`` in fs/proc/fd.c) **and** ``CAP_SYS_PTRACE``
(``readlink`` of each link goes through ``ptrace_may_access(PTRACE_MODE_READ_FSCREDS)``:
``proc_pid_readlink`` in fs/proc/base.c; proc(5), "/proc/pid/fd/"). Neither is enough alone: the
capability experiment (tests/collectors/test_processes.py) shows it on this kernel. Without them a
socket keeps its uid and the problem says which capability would allow more.

A lookup of a new socket costs a scan of /proc/*/fd, O(fds on the host), so
:class:`InodeMapper` scans as little as it can: a cache of inode -> (pid, fd) across cycles
(one ``readlink`` confirms a cached entry), a scan only for inodes not cached, best candidates
first (processes that held wanted sockets before, then those of the socket's cgroup, then those
of its uid, then the rest), stopping once every inode is found or the time budget is spent, and
a negative cache so that an inode no scan can map is not looked for again by every cycle.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from s3_route_agent.collectors.sock_diag import errno_text
from s3_route_agent.engine.observed import ProcessInfo

logger = logging.getLogger(__name__)

CAP_DAC_READ_SEARCH = 2   # include/uapi/linux/capability.h
CAP_DAC_OVERRIDE = 1
CAP_SYS_PTRACE = 19


def effective_capabilities(proc_root: str = "/proc") -> int:
    """This process's effective capability mask (``CapEff`` of ``/proc/self/status``)."""
    try:
        with open(os.path.join(proc_root, "self", "status"), "r") as handle:
            for line in handle:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def read_process(proc_root: str, pid: int) -> ProcessInfo:
    """Name and real uid of ``pid`` (``/proc/PID/status``); ``?`` and -1 when unreadable."""
    name = "?"
    uid = -1
    try:
        with open(f"{proc_root}/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"Name:"):
                    name = line[5:].strip().decode("utf-8", "replace")
                elif line.startswith(b"Uid:"):
                    uid = int(line.split()[1])
                    break
    except (OSError, ValueError):
        pass
    return ProcessInfo(pid, name, uid)


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> Optional[str]:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified on hybrid hosts)."""
    try:
        with open(mountinfo) as handle:
            for line in handle:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return left.split()[4].replace("\\040", " ")
    except (OSError, IndexError):
        pass
    return None


class CgroupIndex:
    """cgroup v2 id (INET_DIAG_CGROUP_ID: the inode of the cgroup's directory) -> its pids.

    Used only to order the /proc/*/fd scan (a socket is usually still held by a process of the
    cgroup that created it, such as its systemd service), never to decide. The tree is walked
    again at most once per :meth:`pids` call with an id not seen before.
    """

    def __init__(self, root: Optional[str] = None) -> None:
        """Index the cgroup2 tree at ``root`` (default: where cgroup2 is mounted)."""
        self.root = root if root is not None else cgroup2_mount()
        self._paths: Dict[int, str] = {}

    def _walk(self) -> None:
        self._paths = {}
        if not self.root:
            return
        for dirpath, _dirs, _files in os.walk(self.root):
            try:
                self._paths[os.stat(dirpath).st_ino] = dirpath
            except OSError:
                continue

    def pids(self, cgroup_ids: Iterable[int]) -> List[int]:
        """The pids in the cgroups ``cgroup_ids`` (unknown ids are skipped)."""
        ids = [i for i in cgroup_ids if i]
        if any(i not in self._paths for i in ids):
            self._walk()
        out: List[int] = []
        for i in ids:
            path = self._paths.get(i)
            if path is None:
                continue
            try:
                with open(os.path.join(path, "cgroup.procs")) as handle:
                    out.extend(int(x) for x in handle.read().split())
            except (OSError, ValueError):
                continue
        return out


class InodeMapper:
    """Maps socket inodes to processes through /proc/PID/fd, caching across cycles.

    Per :meth:`map` call:

    * a cached inode costs one ``readlink`` (the fd still holds it: fds are reused);
    * a new inode starts a scan of /proc/*/fd: first ``first_pids`` (the agent's own), then the
      processes that held wanted sockets before ("hot" pids), then those of the sockets'
      cgroups, then those whose uid owns a wanted socket, then the rest; it stops as soon as
      every wanted inode is found, or once ``budget_seconds`` have passed (the rest waits for
      the next cycle, and the problem says so);
    * an inode a full scan could not map (another user's process without the capabilities, a
      process in another PID namespace) is not looked for again by a full scan until
      ``retry_unmapped_after`` seconds have passed; meanwhile only processes that appeared
      since are scanned for it.
    """

    def __init__(self, proc_root: str = "/proc", skip_pids: Iterable[int] = (),
                 retry_unmapped_after: float = 300.0,
                 cgroup_index: Optional[CgroupIndex] = None, first_pids: Iterable[int] = (),
                 budget_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Scan ``proc_root`` (never ``skip_pids``); ``clock`` times the budget and retries."""
        self.proc_root = proc_root
        self.cgroup_index = cgroup_index
        self.skip_pids = frozenset(skip_pids)
        self.first_pids = tuple(first_pids)
        self.retry_unmapped_after = retry_unmapped_after
        self.budget_seconds = budget_seconds
        self.clock = clock
        self._cache: Dict[int, Tuple[int, str, ProcessInfo]] = {}  # inode -> (pid, fd, process)
        self._hot_pids: Dict[int, None] = {}                       # pids that held wanted sockets
        self._unmapped: Dict[int, Tuple[float, str]] = {}          # inode -> (when, why)
        self._pids_seen: Set[int] = set()                          # pids at the last full scan
        self._deadline = float("inf")
        self.last_scan: Dict[str, int] = {}

    def map(self, inodes: Iterable[int], uids: Optional[Dict[int, int]] = None,
            cgroups: Optional[Dict[int, int]] = None) -> Tuple[Dict[int, ProcessInfo], List[str]]:
        """``inodes`` wanted; ``uids`` and ``cgroups`` (inode -> socket uid / cgroup id) order
        the scan. Returns (inode -> process for those found, problems)."""
        wanted = {i for i in inodes if i}
        found: Dict[int, ProcessInfo] = {}
        problems: List[str] = []
        stats = self.last_scan = {"verified": 0, "pids_scanned": 0, "links_read": 0,
                                  "full_scan": 0, "budget_spent": 0}
        root = self.proc_root
        for inode in list(wanted):
            entry = self._cache.get(inode)
            if entry is None:
                continue
            pid, fd, proc = entry
            stats["verified"] += 1
            try:
                ok = os.readlink(f"{root}/{pid}/fd/{fd}") == f"socket:[{inode}]"
            except OSError:
                ok = False
            if ok:
                found[inode] = proc
                wanted.discard(inode)
            else:
                del self._cache[inode]
        if len(self._cache) > 2 * len(found) + 1024:
            self._cache = {i: e for i, e in self._cache.items() if i in found}
        if self._unmapped:
            self._unmapped = {i: v for i, v in self._unmapped.items() if i in wanted}
        if not wanted:
            return found, problems

        now = self.clock()
        self._deadline = now + self.budget_seconds
        retry = {i for i in wanted if i in self._unmapped
                 and now - self._unmapped[i][0] < self.retry_unmapped_after}
        fresh = wanted - retry
        try:
            pids = [int(n) for n in os.listdir(root) if n.isdigit()]
        except OSError as exc:
            return found, [f"cannot list {root} ({errno_text(exc)}): sockets not mapped to "
                           "processes, kept with their uid"]
        denied: Dict[int, str] = {}
        alive = set(pids)
        skip = self.skip_pids
        if retry:
            # inodes a recent full scan could not map: look only in processes new since then
            targets = {f"socket:[{i}]": i for i in retry}
            new = [p for p in pids if p not in self._pids_seen and p not in skip]
            self._scan(new, targets, found, denied)
            self._pids_seen.update(new)
            if targets:
                why = self._unmapped[next(iter(targets.values()))][1]
                problems.append(f"{len(targets)} socket(s) not mapped to a process (as at the "
                                f"last full scan of {root}, redone every "
                                f"{self.retry_unmapped_after:g} s): " + why.split(": ", 1)[-1])
        if fresh:
            # full scan, best candidates first, until every new inode is found
            stats["full_scan"] = 1
            targets = {f"socket:[{i}]": i for i in fresh}
            first = [p for p in dict.fromkeys((*self.first_pids, *self._hot_pids))
                     if p in alive and p not in skip]
            self._scan(first, targets, found, denied)
            done = set(first)
            if targets and cgroups and self.cgroup_index is not None:
                ids = {cgroups[i] for i in targets.values() if cgroups.get(i)}
                group = [p for p in dict.fromkeys(self.cgroup_index.pids(ids))
                         if p in alive and p not in skip and p not in done]
                self._scan(group, targets, found, denied)
                done.update(group)
            if targets:
                rest = [p for p in pids if p not in skip and p not in done]
                self._scan(self._by_owner(rest, uids, set(targets.values())), targets, found,
                           denied)
            if targets and self.clock() > self._deadline:
                stats["budget_spent"] = 1
                problems.append(f"{len(targets)} socket(s) not mapped yet: the scan of {root} "
                                f"stopped after its {self.budget_seconds:g} s budget; kept with "
                                "their uid, the next cycle goes on")
            elif targets:   # visited every process
                self._pids_seen = alive
                why = self._explain(len(targets), denied, root)
                for inode in targets.values():
                    self._unmapped[inode] = (now, why)
                problems.append(why)
            self._hot_pids = {p: None for p in self._hot_pids if p in alive}
        for inode in found:
            self._unmapped.pop(inode, None)
        return found, problems

    def _scan(self, pids: Iterable[int], targets: Dict[str, int], found: Dict[int, ProcessInfo],
              denied: Dict[int, str]) -> None:
        root = self.proc_root
        flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
        readlink = os.readlink
        stats = self.last_scan
        for pid in pids:
            if not targets or self.clock() > self._deadline:
                return
            try:
                dfd = os.open(f"{root}/{pid}/fd", flags)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EPERM):
                    denied[pid] = "opendir"
                continue  # ENOENT: exited
            stats["pids_scanned"] += 1
            try:
                try:
                    names = os.listdir(dfd)
                except OSError as exc:
                    if exc.errno in (errno.EACCES, errno.EPERM):
                        denied[pid] = "opendir"
                    continue
                proc = None
                links = 0
                for fd in names:
                    links += 1
                    try:
                        link = readlink(fd, dir_fd=dfd)
                    except OSError as exc:
                        if exc.errno in (errno.EACCES, errno.EPERM):
                            denied[pid] = "readlink"
                            break
                        continue  # fd closed meanwhile
                    inode = targets.pop(link, None)
                    if inode is not None:
                        if proc is None:
                            proc = read_process(root, pid)
                        found[inode] = proc
                        self._cache[inode] = (pid, fd, proc)
                        self._hot_pids[pid] = None
                        if not targets:
                            break
                stats["links_read"] += links
            finally:
                os.close(dfd)

    def _by_owner(self, pids: List[int], uids: Optional[Dict[int, int]],
                  wanted: Set[int]) -> List[int]:
        """``pids`` with those owned (/proc/PID's uid) by a wanted socket's uid first."""
        if not uids:
            return pids
        owners = {uids[i] for i in wanted if i in uids}
        if not owners or owners == {0} and os.geteuid() == 0:
            return pids  # everything is root's: ordering by owner would not help
        first, later = [], []
        for pid in pids:
            try:
                (first if os.stat(f"{self.proc_root}/{pid}").st_uid in owners
                 else later).append(pid)
            except OSError:
                continue
        return first + later

    @staticmethod
    def _explain(missing: int, denied: Dict[int, str], root: str) -> str:
        if not denied:
            return (f"{missing} socket(s) not mapped to a process: held by no process visible "
                    f"in {root} (closed meanwhile, held only by the kernel or by a process in "
                    "another PID namespace, or hidden by /proc's hidepid=/subset=); kept with "
                    "their uid")
        caps = effective_capabilities(root)
        need = []
        dac = caps >> CAP_DAC_READ_SEARCH & 1 or caps >> CAP_DAC_OVERRIDE & 1
        if any(v == "opendir" for v in denied.values()) and not dac:
            need.append("CAP_DAC_READ_SEARCH (the /proc/PID/fd directory is mode 0500, owned "
                        "by the process's euid, or root if it is not dumpable)")
        if not caps >> CAP_SYS_PTRACE & 1:
            need.append("CAP_SYS_PTRACE (readlink of /proc/PID/fd/N requires "
                        "ptrace_may_access(PTRACE_MODE_READ_FSCREDS))")
        pids = sorted(denied)
        shown = ", ".join(str(p) for p in pids[:10]) + (" ..." if len(pids) > 10 else "")
        text = (f"{missing} socket(s) not mapped to a process: /proc/PID/fd of {len(pids)} "
                f"process(es) not readable (EACCES; pids {shown}); kept with their uid")
        if need:
            text += "; reading them needs " + " and ".join(need)
        else:
            text += ("; denied despite the capabilities (an LSM, hidepid= or another user "
                     "namespace?)")
        return text


def map_inodes_to_processes(inodes: Iterable[int], proc_root: str = "/proc",
                            skip_pids: Iterable[int] = (),
                            ) -> Tuple[Dict[int, ProcessInfo], List[str]]:
    """One-shot :meth:`InodeMapper.map` (no cache across calls)."""
    return InodeMapper(proc_root, skip_pids).map(inodes)
