"""The observer: one look at this process's own loopback connections (sock_diag, processes),
OS refusals as problems, never an exception; the state file between looks, a corrupt one set
aside and rebuilt."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest

from s3_route_agent.collectors.connections import (HostObserver, ObservedStateFile,
                                                   TrafficCollectors, state_from_dict,
                                                   state_to_dict)
from s3_route_agent.engine.observed import NameRecord, ObservedState

LOOPBACK = ("127.0.0.0/8", "::1/128")


def test_a_look_finds_the_sockets_with_bytes_and_the_process(live_pairs):
    observer = HostObserver()
    try:
        seen = observer.look(LOOPBACK)
        assert seen.source == "sock_diag" and seen.problems == ()
        assert seen.own_pid == os.getpid() and seen.elapsed_ms > 0
        by_inode = {s.inode: s for s in seen.sockets}
        for client, server, up, down in live_pairs:
            c = by_inode[os.fstat(client.fileno()).st_ino]
            assert up <= c.bytes_sent <= up + 1 and c.bytes_received == down
            assert seen.process_of(c.inode).pid == os.getpid()
            s = by_inode[os.fstat(server.fileno()).st_ino]
            assert s.bytes_sent == down and s.bytes_received == up
        # the next look maps from the cache
        observer.look(LOOPBACK)
        assert observer.mapper.last_scan["pids_scanned"] == 0
    finally:
        observer.close()


def test_netlink_refused_reads_proc_and_says_so(live_pairs):
    def refuse(timeout: float):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    seen = HostObserver(netlink_factory=refuse).look(LOOPBACK)
    assert seen.source == "proc"
    assert any("EPERM" in p and "no byte counters" in p for p in seen.problems)
    inode = os.fstat(live_pairs[0][0].fileno()).st_ino
    assert inode in {s.inode for s in seen.sockets}
    assert seen.process_of(inode).pid == os.getpid()


def test_a_broken_observer_is_a_problem_not_an_exception():
    def broken(timeout: float):
        raise RuntimeError("no netlink here")
    seen = HostObserver(netlink_factory=broken).look(LOOPBACK)
    assert seen.sockets == () and seen.source == "none"
    assert seen.problems == ("observing connections failed: RuntimeError: no netlink here",)


def test_nothing_to_look_for_is_a_note():
    seen = HostObserver().look(())
    assert seen.sockets == () and seen.problems == () and "no S3 network" in seen.notes[0]


def test_netlink_and_proc_both_unreadable(tmp_path):
    def refuse(timeout: float):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    seen = HostObserver(netlink_factory=refuse, proc_net=str(tmp_path / "no-net")).look(LOOPBACK)
    assert seen.source == "none" and len(seen.problems) == 2
    assert all("unreadable" in p and "not observed" in p for p in seen.problems)


STATE = ObservedState(since=100.0, ledger=(("k1", 10, 20),), totals=(("public", 10, 20),),
                      nat_bytes=30, names=(NameRecord("b.s3.amazonaws.com", ("52.216.1.1",),
                                                      100.0, 150.0, True, None),))


def test_state_round_trips(tmp_path):
    assert state_from_dict(state_to_dict(STATE)) == STATE
    store = ObservedStateFile(tmp_path)
    assert store.store(STATE) == ()
    assert store.load() == (STATE, ())
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_no_state_yet_starts_counting_now(tmp_path):
    state, problems = ObservedStateFile(tmp_path, clock=lambda: 500.0).load()
    assert state == ObservedState(since=500.0) and problems == ()


@pytest.mark.parametrize("text", ["{not json", json.dumps({"version": 99}),
                                  json.dumps({"version": 1, "since": "x"}), "[]"])
def test_a_corrupt_state_is_set_aside_and_rebuilt(tmp_path, text):
    store = ObservedStateFile(tmp_path, clock=lambda: 777.0)
    store.path.write_text(text)
    state, problems = store.load()
    assert state == ObservedState(since=777.0)
    assert "was corrupt" in problems[0] and "set aside as observed.json.corrupt-777" in problems[0]
    assert (tmp_path / "observed.json.corrupt-777").read_text() == text
    assert not store.path.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: no write error to see")
def test_an_unwritable_state_dir_is_a_problem(tmp_path):
    tmp_path.chmod(0o500)
    try:
        problems = ObservedStateFile(tmp_path).store(STATE)
    finally:
        tmp_path.chmod(0o700)
    assert "cannot write" in problems[0] and "counts these bytes again" in problems[0]


def test_a_state_path_that_is_a_directory_is_a_problem(tmp_path):
    store = ObservedStateFile(tmp_path)
    store.path.mkdir()
    assert "cannot write" in store.store(STATE)[0]
    state, problems = store.load()
    assert "cannot read" in problems[0] and state.ledger == ()


def test_the_collectors_remember_the_last_state(tmp_path):
    traffic = TrafficCollectors(observer=HostObserver(), state_file=ObservedStateFile(tmp_path))
    assert traffic.load_state()[0].ledger == ()
    traffic.keep_state(STATE)
    assert traffic.load_state() == (STATE, ())
    (tmp_path / "observed.json").write_text("{broken")        # memory wins in a running daemon
    assert traffic.load_state() == (STATE, ())
    traffic.close()


def test_an_unchanged_state_is_not_written_again(tmp_path):
    traffic = TrafficCollectors(observer=HostObserver(), state_file=ObservedStateFile(tmp_path))
    assert traffic.keep_state(STATE) == ()
    path = tmp_path / "observed.json"
    path.unlink()
    assert traffic.keep_state(STATE) == () and not path.exists()     # same state: no write
    changed = ObservedState(since=100.0, nat_bytes=31)
    traffic.keep_state(changed)
    assert ObservedStateFile(tmp_path).load() == (changed, ())
    traffic.close()
