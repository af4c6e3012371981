"""Socket inode -> process through /proc/PID/fd: the cache, the scan order, the budget and the
negative cache on synthetic /proc trees; a live mapping of this process's own sockets; and the
capability experiment (root): mapping another user's socket needs both CAP_DAC_READ_SEARCH and
CAP_SYS_PTRACE."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from s3_route_agent.collectors.processes import (CgroupIndex, InodeMapper, cgroup2_mount,
                                                 map_inodes_to_processes)
from s3_route_agent.engine.observed import ProcessInfo

HERE = Path(__file__).resolve().parent


def test_mapper_maps_this_processs_own_sockets(live_pairs):
    mine = [os.fstat(x.fileno()).st_ino for c, s, _, _ in live_pairs for x in (c, s)]
    found, problems = map_inodes_to_processes(mine)
    assert problems == []
    assert {found[i].pid for i in mine} == {os.getpid()}
    assert found[mine[0]].uid == os.getuid()
    assert found[mine[0]].name == Path("/proc/self/comm").read_text().strip()


def test_mapper_cache_survives_and_fd_reuse_does_not_lie(live_pairs):
    mapper = InodeMapper(first_pids=[os.getpid()])
    mine = {os.fstat(x.fileno()).st_ino for c, s, _, _ in live_pairs for x in (c, s)}
    first, _ = mapper.map(mine)
    assert set(first) == mine
    second, _ = mapper.map(mine)
    assert set(second) == mine
    assert mapper.last_scan["pids_scanned"] == 0          # all from the cache
    assert mapper.last_scan["verified"] >= len(mine)
    # fd reuse: close one socket, open another on the same fd number -> the cache must not lie
    c = live_pairs[0][0]
    fd = c.fileno()
    old_inode = os.fstat(fd).st_ino
    c.close()
    other = socket.socket()
    try:
        if other.fileno() == fd:
            procs, _ = mapper.map([old_inode])
            assert old_inode not in procs
    finally:
        other.close()


def test_mapper_scans_the_sockets_cgroup_first(tmp_path):
    proc = tmp_path / "proc"
    for pid in range(100, 130):
        _fake_proc(proc, pid, f"p{pid}", {"1": f"socket:[{pid}000]"})
    _fake_proc(proc, 200, "app", {"3": "socket:[42]"})
    cg = tmp_path / "cgroup" / "system.slice" / "app.service"
    cg.mkdir(parents=True)
    (cg / "cgroup.procs").write_text("200\n")
    (tmp_path / "cgroup" / "cgroup.procs").write_text("\n".join(str(p) for p in range(100, 130)) + "\n")
    m = InodeMapper(str(proc), cgroup_index=CgroupIndex(str(tmp_path / "cgroup")))
    found, problems = m.map([42], cgroups={42: os.stat(cg).st_ino})
    assert found[42].pid == 200 and problems == [] and m.last_scan["pids_scanned"] == 1
    m2 = InodeMapper(str(proc))
    found, _ = m2.map([42])
    assert found[42].pid == 200   # without the hint: found in /proc order


def test_cgroup2_mount_found():
    assert cgroup2_mount() is None or os.path.isdir(cgroup2_mount())


def _fake_proc(root, pid, name, links, uid=1000):
    fd = root / str(pid) / "fd"
    fd.mkdir(parents=True)
    for n, target in links.items():
        os.symlink(target, fd / n)
    (root / str(pid) / "status").write_text(
        f"Name:\t{name}\nUmask:\t0022\nState:\tS\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")


def test_mapper_on_a_synthetic_proc_tree(tmp_path):
    _fake_proc(tmp_path, 100, "curl", {"3": "socket:[555]", "4": "/dev/null"})
    _fake_proc(tmp_path, 200, "aws", {"0": "pipe:[9]", "7": "socket:[777]"})
    (tmp_path / "self").mkdir()
    found, problems = map_inodes_to_processes([555, 777, 888], proc_root=str(tmp_path))
    assert found == {555: ProcessInfo(100, "curl", 1000), 777: ProcessInfo(200, "aws", 1000)}
    assert len(problems) == 1 and problems[0].startswith("1 socket(s) not mapped to a process: held by no process")
    found, problems = map_inodes_to_processes([777], proc_root=str(tmp_path), skip_pids=[200])
    assert found == {}


def test_mapper_cache_hot_pids_and_unmapped_retry(tmp_path):
    for pid in range(100, 140):
        _fake_proc(tmp_path, pid, f"p{pid}", {"1": f"socket:[{pid}000]"})
    _fake_proc(tmp_path, 150, "app", {"3": "socket:[1]", "4": "socket:[2]"})
    m = InodeMapper(str(tmp_path))
    found, problems = m.map([1, 9])
    assert found[1].pid == 150 and problems and m.last_scan["full_scan"] == 1
    assert m.last_scan["pids_scanned"] == 41           # everything: 9 is nowhere
    # cached inode: one readlink; unmapped inode 9: no new full scan within the retry period
    found, problems = m.map([1, 9])
    assert set(found) == {1} and m.last_scan == {"verified": 1, "pids_scanned": 0, "links_read": 0,
                                                 "full_scan": 0, "budget_spent": 0}
    assert "as at the last full scan" in problems[0]
    # a new inode in the hot process: found there first
    found, _ = m.map([1, 2, 9])
    assert found[2].pid == 150 and m.last_scan["pids_scanned"] == 1
    # inode 9 appears in a new process: scanned without a full scan
    _fake_proc(tmp_path, 160, "late", {"5": "socket:[9]"})
    found, problems = m.map([1, 2, 9])
    assert found[9].pid == 160 and problems == [] and m.last_scan["full_scan"] == 0
    assert m.last_scan["pids_scanned"] == 1
    # fd reuse: fd 3 of pid 150 now holds another socket -> the cached entry is dropped
    os.remove(tmp_path / "150" / "fd" / "3")
    os.symlink("socket:[3]", tmp_path / "150" / "fd" / "3")
    found, problems = m.map([1])
    assert found == {} and m.last_scan["full_scan"] == 1


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv(1) to run processes as other uids")
def test_unprivileged_mapping_names_the_capabilities():
    r = subprocess.run([sys.executable, str(HERE / "cap_experiment.py"), "--json"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode == 77:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr
    rows = {(x["caps"], x["target"]): x for x in json.loads(r.stdout)}
    for target in ("other", "nodump"):
        assert not rows[("(none)", target)]["mapped"]
        assert not rows[("dac_read_search", target)]["mapped"]
        assert not rows[("sys_ptrace", target)]["mapped"]
        assert rows[("dac_read_search,sys_ptrace", target)]["mapped"]
        assert rows[("dac_override,sys_ptrace", target)]["mapped"]
        assert not rows[("dac_override", target)]["mapped"]
        assert not rows[("dac_read_search,perfmon", target)]["mapped"]
        assert rows[("sys_ptrace", target)]["listdir"] == "EACCES"
        assert rows[("dac_read_search", target)]["listdir"] == "ok"
        assert rows[("dac_read_search", target)]["readlink"] == "EACCES"
    text = rows[("(none)", "other")]["problems"][0]
    assert "CAP_DAC_READ_SEARCH" in text and "CAP_SYS_PTRACE" in text and "kept with their uid" in text
    text = rows[("dac_read_search", "other")]["problems"][0]
    assert "CAP_SYS_PTRACE" in text and "CAP_DAC_READ_SEARCH" not in text


class Ticks:
    """A clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_scan_stops_at_its_budget_and_goes_on_next_cycle(tmp_path):
    for pid in range(100, 140):
        _fake_proc(tmp_path, pid, f"p{pid}", {"1": f"socket:[{pid}000]"})
    _fake_proc(tmp_path, 150, "app", {"3": "socket:[1]"})
    clock = Ticks(0.3)                       # each process scanned costs 0.3 s of the budget
    m = InodeMapper(str(tmp_path), budget_seconds=1.0, clock=clock)
    found, problems = m.map([1])
    assert found == {} and m.last_scan["budget_spent"] == 1
    assert "stopped after its 1 s budget" in problems[0] and "kept with their uid" in problems[0]
    assert m.last_scan["pids_scanned"] < 41
    # not put in the negative cache: the next cycle scans again (here with time to spare)
    clock.step = 0.0
    found, problems = m.map([1])
    assert found[1].pid == 150 and problems == []
