"""The host's live TCP connections to given networks, with the processes that hold them.

:class:`HostObserver` makes one look per check or daemon cycle: a sock_diag dump filtered by the
kernel to the networks asked for (:mod:`s3_route_agent.collectors.sock_diag`, falling back to
/proc/net/tcp{,6}), then inode -> process through /proc/PID/fd
(:mod:`s3_route_agent.collectors.processes`). It takes its clock, its /proc root and its netlink
factory as arguments (a test hands in a factory that opens the socket inside a test network
namespace) and never raises: what the OS refused becomes a problem line in the observation.

:class:`ObservedStateFile` keeps what one look leaves for the next (the per-socket byte ledger,
running totals, the names seen) in ``state_dir``, so that ``check`` one-shots count a long
connection once as the daemon does; a corrupt file is set aside and counting starts again.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from s3_route_agent.engine.observed import (NameRecord, ObservedState, ProcessInfo,
                                            SocketObservation)
from s3_route_agent.statefile import read_state_json, replace_json, set_aside

if TYPE_CHECKING:
    from s3_route_agent.collectors.sock_diag import RemoteNetworks

logger = logging.getLogger(__name__)

STATE_FILE_NAME = "observed.json"
STATE_VERSION = 1


class HostObserver:
    """One look at the host's TCP connections per call of :meth:`look`; keeps its netlink
    socket, its inode -> process cache and its filter program between looks."""

    def __init__(self, *, proc_root: str = "/proc", proc_net: Optional[str] = None,
                 netlink_factory: Optional[Callable[[float], Any]] = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 own_pid: Optional[int] = None, map_budget_seconds: float = 1.0) -> None:
        """``proc_root`` is where processes are read; ``proc_net`` the fallback's tcp files
        (default ``PROC_ROOT/net``: this process's network namespace); ``netlink_factory(timeout)``
        opens the sock_diag socket (default: the kernel's); ``own_pid`` marks the agent's own
        connections."""
        # Loaded here, not with the module: reading the observed state (validate-config, the
        # check's target list) needs neither the socket dumper nor the process mapper.
        from s3_route_agent.collectors.processes import CgroupIndex, InodeMapper
        from s3_route_agent.collectors.sock_diag import CONNECTED_STATES, TcpDumper, open_sock_diag
        self.proc_root = proc_root
        self.own_pid = os.getpid() if own_pid is None else own_pid
        self.clock = clock
        self.monotonic = monotonic
        self._connected_states = CONNECTED_STATES
        self.dumper = TcpDumper(proc_net or os.path.join(proc_root, "net"),
                                netlink_factory=netlink_factory or open_sock_diag)
        self.mapper = InodeMapper(proc_root, cgroup_index=CgroupIndex(), first_pids=(self.own_pid,),
                                  budget_seconds=map_budget_seconds, clock=monotonic)
        self._networks: tuple[tuple[str, ...], RemoteNetworks] | None = None

    def _filter(self, networks: Sequence[str]) -> RemoteNetworks:
        from s3_route_agent.collectors.sock_diag import RemoteNetworks
        key = tuple(networks)
        if self._networks is None or self._networks[0] != key:
            self._networks = (key, RemoteNetworks(key))
        return self._networks[1]

    def look(self, networks: Sequence[str]) -> SocketObservation:
        """The host's connected TCP sockets whose peer is in ``networks``, and their processes.

        Never raises: a failed dump or mapping is a problem line, sockets that cannot be mapped
        keep their uid (a note says which capability would map them)."""
        now = self.clock()
        started = self.monotonic()
        if not networks:
            return SocketObservation(time=now, own_pid=self.own_pid, source="none",
                                     notes=("no S3 network is known yet (no inventory, no S3 "
                                            "ranges, no S3 name resolved): nothing to look for",))
        try:
            remote = self._filter(networks)
            sockets, problems = self.dumper.dump(self._connected_states, (4, 6), remote)
            source = self.dumper.last_source
            notes = list(self.dumper.notes)
        except Exception as exc:  # noqa: BLE001 - an observation never fails a check
            logger.error("observing connections failed: %s: %s", type(exc).__name__, exc)
            return SocketObservation(time=now, own_pid=self.own_pid, source="none",
                                     problems=(f"observing connections failed: "
                                               f"{type(exc).__name__}: {exc}",),
                                     elapsed_ms=(self.monotonic() - started) * 1000)
        processes: dict[int, ProcessInfo] = {}
        wanted = {s.inode: s.uid for s in sockets if s.inode}
        if wanted:
            cgroups = {s.inode: s.cgroup_id for s in sockets if s.inode and s.cgroup_id}
            try:
                processes, unmapped = self.mapper.map(wanted, wanted, cgroups)
                notes.extend(unmapped)
            except Exception as exc:  # noqa: BLE001
                notes.append(f"sockets not mapped to processes ({type(exc).__name__}: {exc}); "
                             "kept with their uid")
        return SocketObservation(time=now, sockets=tuple(sockets),
                                 processes=tuple(sorted(processes.items())),
                                 own_pid=self.own_pid, source=source,
                                 problems=tuple(problems), notes=tuple(notes),
                                 elapsed_ms=(self.monotonic() - started) * 1000)

    def close(self) -> None:
        """Close the netlink socket."""
        self.dumper.close()


class ObservedStateFile:
    """``STATE_DIR/observed.json``: the state one look leaves for the next (see the module
    docstring). Loading never raises; a corrupt file is renamed ``observed.json.corrupt-TIME``."""

    def __init__(self, state_dir: str | os.PathLike[str],
                 clock: Callable[[], float] = time.time) -> None:
        """The file in ``state_dir``; ``clock`` dates a new state and a set-aside file."""
        self.path = Path(state_dir) / STATE_FILE_NAME
        self.clock = clock

    def load(self) -> tuple[ObservedState, tuple[str, ...]]:
        """The kept state (a new one when there is none), and what went wrong reading it."""
        try:
            document = read_state_json(self.path)
            if document is None:
                return ObservedState(since=self.clock()), ()
            return state_from_dict(document), ()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Binary garbage included (UnicodeDecodeError is a ValueError): never fatal.
            aside = set_aside(self.path, f"{type(exc).__name__}: {exc}", self.clock)
            where = (f"set aside as {aside.name}" if aside is not None
                     else "could not be set aside")
            return (ObservedState(since=self.clock()),
                    (f"{self.path} was corrupt ({type(exc).__name__}), {where}; bytes are "
                     "counted from now",))
        except OSError as exc:
            return (ObservedState(since=self.clock()),
                    (f"cannot read {self.path} ({exc.strerror}): bytes are counted from now",))

    def store(self, state: ObservedState) -> tuple[str, ...]:
        """Replace the file with ``state`` (atomically); what went wrong, if anything."""
        try:
            replace_json(self.path, state_to_dict(state))
        except OSError as exc:
            return (f"cannot write {self.path} ({exc.strerror}): the next check counts these "
                    "bytes again",)
        return ()


def state_to_dict(state: ObservedState) -> dict[str, Any]:
    """The JSON form of the kept state."""
    return {"version": STATE_VERSION, "since": state.since,
            "ledger": [list(entry) for entry in state.ledger],
            "totals": [list(entry) for entry in state.totals], "nat_bytes": state.nat_bytes,
            "names": [{"name": r.name, "addresses": list(r.addresses),
                       "first_seen": r.first_seen, "last_seen": r.last_seen,
                       "resolved": r.resolved, "used_at": r.used_at} for r in state.names]}


def state_from_dict(data: dict[str, Any]) -> ObservedState:
    """The kept state from its JSON form; ValueError/KeyError/TypeError when it is not one."""
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unknown state version {data.get('version')!r}")
    return ObservedState(
        since=float(data["since"]),
        ledger=tuple((str(k), int(s), int(r)) for k, s, r in data["ledger"]),
        totals=tuple((str(p), int(s), int(r)) for p, s, r in data["totals"]),
        nat_bytes=int(data["nat_bytes"]),
        names=tuple(NameRecord(name=str(n["name"]), addresses=tuple(str(a) for a in n["addresses"]),
                               first_seen=float(n["first_seen"]), last_seen=float(n["last_seen"]),
                               resolved=bool(n["resolved"]),
                               used_at=None if n.get("used_at") is None else float(n["used_at"]))
                    for n in data["names"]))


@dataclass
class TrafficCollectors:
    """What observing the host's traffic uses, built once per config (``wiring``) so that it
    lives across daemon cycles: the observer, the state file, and the DNS sniffer (probes on).

    ``memory`` is the state the last look left: in the daemon it carries on between cycles even
    when the state file cannot be written. ``keep_sniffing`` (the daemon) leaves the sniffer
    running between runs; a one-shot ``check`` sniffs only while it runs."""

    observer: HostObserver
    state_file: Optional[ObservedStateFile] = None
    sniffer: Any = None                 # collectors.dns_sniffer.DnsSniffer, when probes are on
    keep_sniffing: bool = False
    memory: Optional[ObservedState] = None
    stored: bool = False                # ``memory`` is what the file holds

    def begin_run(self) -> None:
        """Start the DNS sniffer if it is not running (it is skipped without CAP_NET_RAW)."""
        if self.sniffer is not None and not self.sniffer.running:
            self.sniffer.start()

    def end_run(self) -> None:
        """Stop the sniffer after a one-shot run (not in the daemon)."""
        if self.sniffer is not None and not self.keep_sniffing:
            self.sniffer.stop()

    def load_state(self) -> tuple[ObservedState, tuple[str, ...]]:
        """The state to judge the next look against: the last one kept in memory, else the
        file's."""
        if self.memory is not None:
            return self.memory, ()
        if self.state_file is None:
            return ObservedState(since=self.observer.clock()), ()
        return self.state_file.load()

    def keep_state(self, state: ObservedState) -> tuple[str, ...]:
        """Remember ``state`` (memory and file; the file is not written again when nothing
        changed since the last write); what went wrong writing it."""
        unchanged = self.stored and state == self.memory
        self.memory = state
        if self.state_file is None or unchanged:
            return ()
        problems = self.state_file.store(state)
        self.stored = not problems
        return problems

    def close(self) -> None:
        """Stop the sniffer and close the observer."""
        if self.sniffer is not None:
            self.sniffer.stop()
        self.observer.close()
