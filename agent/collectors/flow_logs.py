"""Flow-log corroboration (opt-in): what VPC Flow Logs say about a run's test transfer.

Where the VPC delivers flow logs with the version-5 ``traffic-path`` field to CloudWatch Logs, a
Logs Insights query finds the transfer's flows from this host's ENI and reads the path:
7 gateway VPC endpoint, 8 internet gateway, 1 a resource in the same VPC (interface endpoint, NAT
gateway), 2 internet gateway or gateway endpoint (older hosts) ... (VPC user guide, "Flow log
records: available fields", https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html).

Records reach CloudWatch Logs minutes after the traffic, so nothing here waits: a run *starts* a
query for an earlier run's transfer window (:func:`start_query`), and a later run *collects* it
(:func:`collect`) and attaches the answer to its own report naming the run it corroborates
(:func:`attach`). Pending queries live in a small JSON file in ``state_dir``. Cost is bounded:
the time range is the transfer window plus a margin, and the query has a ``limit`` (Logs
Insights bills by data scanned, https://aws.amazon.com/cloudwatch/pricing/).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from s3_route_agent.aws import botocore_errors
from s3_route_agent.engine.evidence import Corroboration, FlowRecord
from s3_route_agent.engine.model import Identity
from s3_route_agent.errors import one_line_detail
from s3_route_agent.statefile import read_state_json, replace_file, set_aside

if TYPE_CHECKING:
    from s3_route_agent.config import AgentConfig

logger = logging.getLogger(__name__)

# The default format plus the version-5 fields we need, in this order
# (EC2 CreateFlowLogs LogFormat, https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html).
DEFAULT_LOG_FORMAT = ("${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} "
                      "${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} "
                      "${log-status} ${traffic-path} ${pkt-dst-aws-service}")
_FIELD = re.compile(r"\$\{([a-z0-9-]+)\}")

TRAFFIC_PATHS = {
    "1": "same-VPC resource (interface endpoint, NAT gateway, ...)",
    "2": "internet gateway or gateway VPC endpoint",
    "3": "virtual private gateway",
    "4": "intra-region VPC peering",
    "5": "inter-region VPC peering",
    "6": "local gateway",
    "7": "gateway VPC endpoint (Nitro)",
    "8": "internet gateway (Nitro)",
}
# The agent's path names for the traffic-path codes that decide one.
TRAFFIC_PATH_TO_PATH = {"7": "gateway", "8": "public", "1": "interface_or_nat"}

STATE_FILE = "flowlog-queries.json"


@dataclass(frozen=True)
class FlowLogSettings:
    """Where the flow logs are and how much a query may cost."""

    log_group: str
    log_format: str = DEFAULT_LOG_FORMAT
    margin_seconds: int = 120        # added before and after the transfer window
    limit: int = 50                  # rows at most
    max_wait_seconds: int = 1800     # give up on records that have not arrived by then


@dataclass
class PendingQuery:
    """A started Logs Insights query and the run whose transfer it corroborates."""

    run_id: str
    query_id: str
    interface_id: str
    addresses: list[str]
    window_start: int                # epoch seconds
    window_end: int
    started_at: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PendingQuery":
        """Rebuild from the state file."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def log_fields(log_format: str) -> list[str]:
    """Field names of a flow-log format string, in order (``traffic-path`` -> ``traffic_path``)."""
    names = [n.replace("-", "_") for n in _FIELD.findall(log_format)]
    if not names:
        raise ValueError(f"no ${{field}} in flow-log format {log_format!r}")
    return names


def _quote(value: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z.:_-]+", value):
        raise ValueError(f"refusing to put {value!r} into a query")
    return f'"{value}"'


def build_query(settings: FlowLogSettings, interface_id: str, addresses: Iterable[str]) -> str:
    """The Logs Insights query for one ENI's HTTPS flows to ``addresses``.

    Custom-format records are split with ``parse`` (Logs Insights query syntax, "parse",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Parse.html); the
    filter keeps the ENI, port 443 and the resolved addresses; ``limit`` bounds the rows.
    """
    names = log_fields(settings.log_format)
    needed = {"interface_id", "dstaddr", "dstport", "traffic_path"}
    missing = needed - set(names)
    if missing:
        raise ValueError(f"flow-log format lacks {', '.join(sorted(missing))}")
    pattern = " ".join("*" for _ in names)
    address_list = ", ".join(_quote(a) for a in addresses)
    return (f'fields @timestamp, @message\n'
            f'| parse @message "{pattern}" as {", ".join(names)}\n'
            f'| filter interface_id = {_quote(interface_id)} and dstport = "443"'
            + (f" and dstaddr in [{address_list}]" if address_list else "") + "\n"
            f"| sort @timestamp desc\n"
            f"| limit {int(settings.limit)}")


def start_query(logs: Any, settings: FlowLogSettings, run_id: str, interface_id: str,
                addresses: Iterable[str], window_start: float, window_end: float,
                now: float) -> PendingQuery | None:
    """Start the query for one run's transfer window; None (logged) when CloudWatch refuses."""
    addresses = sorted(set(addresses))
    start = int(window_start) - settings.margin_seconds
    end = int(window_end) + settings.margin_seconds
    try:
        answer = logs.start_query(logGroupName=settings.log_group, startTime=start, endTime=end,
                                  queryString=build_query(settings, interface_id, addresses),
                                  limit=settings.limit)
    except (*botocore_errors(), ValueError) as exc:
        logger.warning("flow logs: cannot start query for run %s: %s", run_id, one_line_detail(str(exc)))
        return None
    return PendingQuery(run_id, answer["queryId"], interface_id, addresses, start, end, now)


def _row(result: Iterable[Mapping[str, str]]) -> dict[str, str]:
    return {cell["field"]: cell.get("value", "") for cell in result}


def _flows(rows: Iterable[Mapping[str, str]], pending: PendingQuery,
           names: list[str]) -> list[FlowRecord]:
    """Flows of the pending query's ENI to its addresses on 443, from parsed fields or @message.

    The filter is applied again here: an endpoint that does not run the query's parse/filter
    (moto returns every record of the window) must not turn other traffic into evidence.
    """
    flows = []
    for row in rows:
        record = dict(row)
        if "traffic_path" not in record and "@message" in record:
            values = record["@message"].split()
            if len(values) != len(names):
                continue
            record.update(zip(names, values))
        if record.get("interface_id") != pending.interface_id or record.get("dstport") != "443":
            continue
        if pending.addresses and record.get("dstaddr") not in pending.addresses:
            continue
        flows.append(FlowRecord(**{k: record.get(k, "") for k in FlowRecord.__dataclass_fields__}))
    return flows


def collect(logs: Any, settings: FlowLogSettings, pending: PendingQuery, now: float,
            ) -> Corroboration | None:
    """The query's answer if it is ready; None while it still runs (try again next run)."""
    try:
        answer = logs.get_query_results(queryId=pending.query_id)
    except botocore_errors() as exc:
        return Corroboration(pending.run_id, "failed",
                             evidence=(f"flow-log query failed: {one_line_detail(str(exc))}",))
    status = answer.get("status")
    if status in ("Scheduled", "Running"):
        if now - pending.started_at > settings.max_wait_seconds:
            return Corroboration(pending.run_id, "expired", evidence=(
                "the flow-log query did not finish in time; given up",))
        return None
    if status != "Complete":
        return Corroboration(pending.run_id, "failed",
                             evidence=(f"flow-log query ended {status}",))
    flows = _flows((_row(r) for r in answer.get("results", [])), pending,
                   log_fields(settings.log_format))
    if not flows:
        if now - pending.started_at <= settings.max_wait_seconds:
            # Records lag by minutes: an empty answer soon after the transfer is not an answer.
            return None
        return Corroboration(pending.run_id, "no_records", evidence=(
            f"no flow-log records of {pending.interface_id} to "
            f"{', '.join(pending.addresses)}:443 in the window",))
    codes = tuple(sorted({f.traffic_path for f in flows if f.traffic_path not in ("", "-")}))
    paths = {TRAFFIC_PATH_TO_PATH.get(c) for c in codes}
    path = paths.pop() if len(paths) == 1 else ("mixed" if paths else None)
    evidence = tuple(f"flow {f.srcaddr} -> {f.dstaddr}:443 {f.action}: traffic-path "
                     f"{f.traffic_path} ({TRAFFIC_PATHS.get(f.traffic_path, 'unknown')})"
                     for f in flows)
    return Corroboration(pending.run_id, "found", codes, path, tuple(flows), evidence)


class PendingStore:
    """Pending queries in ``state_dir`` (one small JSON file, replaced atomically)."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        """The store under ``state_dir``; nothing is read until :meth:`load`."""
        self.path = FsPath(state_dir) / STATE_FILE

    def load(self) -> list[PendingQuery]:
        """Every pending query; an unreadable file counts as empty (set aside, logged once)."""
        try:
            document = read_state_json(self.path)
            return [PendingQuery.from_dict(d) for d in document or ()]
        except OSError as exc:
            logger.warning("flow logs: ignoring unreadable %s: %s", self.path, exc)
            return []
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            set_aside(self.path, f"{type(exc).__name__}: {exc}")
            return []

    def save(self, pending: Iterable[PendingQuery]) -> None:
        """Replace the file with ``pending``."""
        replace_file(self.path, json.dumps([asdict(p) for p in pending]))


def corroborate(logs: Any, settings: FlowLogSettings, store: PendingStore, now: float,
                new_run: tuple[str, str, Iterable[str], float, float] | None = None,
                max_pending: int | None = None) -> list[Corroboration]:
    """One non-blocking step per run: collect answers that are ready, then start this run's query.

    ``new_run`` is (run id, ENI id, addresses, transfer start, transfer end) of this run's test
    transfer, when there was one. ``max_pending`` bounds the queries kept waiting: the oldest
    beyond it are given up (reported ``expired``), so one run never polls more than that many.
    """
    still: list[PendingQuery] = []
    done: list[Corroboration] = []
    for pending in store.load():
        result = collect(logs, settings, pending, now)
        if result is None:
            still.append(pending)
        else:
            done.append(result)
    if new_run is not None:
        run_id, eni, addresses, start, end = new_run
        started = start_query(logs, settings, run_id, eni, addresses, start, end, now)
        if started is not None:
            still.append(started)
    if max_pending is not None and len(still) > max_pending:
        still.sort(key=lambda p: p.started_at)
        for dropped in still[:len(still) - max_pending]:
            done.append(Corroboration(dropped.run_id, "expired", evidence=(
                f"given up: more than {max_pending} flow-log queries were waiting",)))
        still = still[len(still) - max_pending:]
    store.save(still)
    return done


# ---- the daemon's per-cycle step ---------------------------------------------------------------

# Queries one host keeps waiting at most. At the default interval (300 s) and max_wait_seconds
# (1800 s) a host has about 6 pending; the cap bounds the GetQueryResults calls of one cycle and
# the host's share of the account's concurrent Logs Insights queries (CloudWatch Logs quotas,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html).
MAX_PENDING_QUERIES = 8


class CycleCorroboration:
    """What each run does once (config ``flow_logs.enabled``): the daemon per cycle, ``check``
    per one-shot. Never waits.

    Each call collects the finished queries of earlier runs (each naming the run it
    corroborates; the run attaches them to its report), then starts the query for this run's
    transfer window. Per call: at most :data:`MAX_PENDING_QUERIES` GetQueryResults and one StartQuery,
    each bounded by the client's timeouts and attempts; the caller adds its own step timeout.
    """

    def __init__(self, settings: FlowLogSettings, store: PendingStore,
                 logs_client: Callable[[str], Any], max_pending: int = MAX_PENDING_QUERIES) -> None:
        """``logs_client(region)`` gives the CloudWatch Logs client of that region."""
        self.settings = settings
        self.store = store
        self._logs_client = logs_client
        self.max_pending = max_pending

    @classmethod
    def from_config(cls, config: AgentConfig,
                    logs_client: Callable[[str], Any]) -> "CycleCorroboration | None":
        """From an AgentConfig; None when flow_logs is off or names no log group (logged)."""
        section = config.flow_logs
        if not section.enabled:
            return None
        if not section.log_group:
            logger.warning("flow_logs.enabled is true but flow_logs.log_group is not set; "
                           "no flow-log corroboration")
            return None
        settings = FlowLogSettings(log_group=section.log_group,
                                   log_format=section.log_format or DEFAULT_LOG_FORMAT,
                                   margin_seconds=section.margin_seconds, limit=section.limit,
                                   max_wait_seconds=section.max_wait_seconds)
        return cls(settings, PendingStore(config.state_dir), logs_client)

    def step(self, run_id: str, identity: Identity | None, peers: Iterable[str],
             window_start: float, window_end: float, now: float) -> tuple[Corroboration, ...]:
        """Collect the answers about earlier runs, and start the query for this run's transfer
        window (this host's ENI to ``peers``, the addresses the transfer's sockets really
        reached). Never raises for a CloudWatch or state-file failure: that becomes a log line
        and, next run, a retry."""
        region = identity.region if identity else None
        if not region:
            return ()     # no identity, no ENI: nothing to ask and no region to ask in
        eni = identity.interface_id if identity else None
        addresses = sorted(set(peers))
        new_run = ((run_id, eni, addresses, window_start, window_end)
                   if eni and addresses else None)
        try:
            done = corroborate(self._logs_client(region), self.settings, self.store, now,
                               new_run, max_pending=self.max_pending)
        except (OSError, ValueError, *botocore_errors()) as exc:
            logger.warning("flow logs: corroboration step failed: %s", one_line_detail(str(exc)))
            return ()
        for item in done:
            logger.info("flow logs: run %s corroborated: %s (path %s)", item.corroborates_run,
                        item.status, item.path)
        return tuple(done)
