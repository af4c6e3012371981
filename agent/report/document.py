"""The report: one document per run. :class:`Report` is typed (every sink and the text renderer
read its fields); :meth:`Report.to_dict` writes the JSON document that the JSON Schema
(``agent/report/report.schema.json``) describes, and :attr:`Report.document` is that document
redacted, as every JSON sink ships it."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterable

from s3_route_agent import __version__
from s3_route_agent.engine.evidence import Corroboration
from s3_route_agent.engine.model import Identity, Inventory, Status, TargetVerdict
from s3_route_agent.redact import redact_document

if TYPE_CHECKING:
    from s3_route_agent.engine.observed import ObservedName, ObservedSection
    from s3_route_agent.report.policies import PoliciesSection

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0"
AGENT_NAME = "s3-route-agent"


def report_schema() -> dict[str, Any]:
    """The JSON Schema every report validates against."""
    text = resources.files("s3_route_agent.report").joinpath("report.schema.json") \
        .read_text("utf-8")
    return json.loads(text)


def iso_time(epoch_ms: int) -> str:
    """``2026-11-22T00:05:01.409Z``: the report's time format (UTC, milliseconds)."""
    whole = _dt.datetime.fromtimestamp(epoch_ms // 1000, _dt.timezone.utc)
    return whole.replace(microsecond=(epoch_ms % 1000) * 1000).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def summary_line(status: Status, verdicts: Iterable[TargetVerdict],
                 errors: Iterable[str], observed: ObservedSection | None = None) -> str:
    """One line: the status and what is wrong, for STATUS=, stderr and alerts. A flow of the
    host's software off the expected path comes first: it is real traffic, not a prediction."""
    verdicts, errors = list(verdicts), list(errors)
    bad = [v for v in verdicts if v.status is not Status.OK]
    flows = observed.bad_flows if observed is not None else ()
    if flows:
        others = len(flows) - 1 + len(bad)
        more = f" (+{others} more)" if others else ""
        return (f"{status.name}: {flows[0].describe()}; expected {observed.expect.value}"
                f"{more}")
    if errors and not verdicts:
        return f"{status.name}: {errors[0]}"
    if not bad:
        paths = ", ".join(f"{v.target.name}={v.path.value}" for v in verdicts)
        return f"{status.name}: {len(verdicts)} target(s) as expected ({paths})"
    worst = sorted(bad, key=lambda v: -[Status.OK, Status.WARNING, Status.UNKNOWN,
                                        Status.CRITICAL].index(v.status))
    head = worst[0]
    more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
    return f"{status.name}: {head.target.name} {head.target.host}: {head.reason}{more}"


@dataclass(frozen=True)
class RunFacts:
    """The report's ``facts`` section: where the run's EC2 and S3 facts came from, what they cost."""

    inventory_source: str = "none"           # "api", "cache" or "none"
    inventory_age_seconds: float | None = None
    ec2_calls: int = 0
    s3_calls: int = 0                        # GetBucketLocation, GetBucketPolicy
    bucket_facts_source: str = "none"        # "api", "cache", "mixed" or "none"
    stale: str | None = None                 # why the EC2 facts are stale, when they are
    route_table: str | None = None
    route_table_association: str | None = None
    s3_prefix_list_id: str | None = None
    endpoints: tuple[str, ...] = ()

    @classmethod
    def of(cls, inventory: Inventory | None, *, source: str = "none",
           age_seconds: float | None = None, ec2_calls: int = 0, s3_calls: int = 0,
           bucket_facts_source: str = "none", stale: str | None = None) -> "RunFacts":
        """The section for a run that used ``inventory`` (None: no EC2 facts)."""
        table = inventory.route_table if inventory else None
        return cls(inventory_source=source, inventory_age_seconds=age_seconds,
                   ec2_calls=ec2_calls, s3_calls=s3_calls,
                   bucket_facts_source=bucket_facts_source, stale=stale,
                   route_table=table.id if table else None,
                   route_table_association=table.association if table else None,
                   s3_prefix_list_id=inventory.s3_prefix_list_id if inventory else None,
                   endpoints=tuple(e.id for e in inventory.endpoints) if inventory else ())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"inventory_source": self.inventory_source,
                "inventory_age_seconds": (round(self.inventory_age_seconds, 1)
                                          if self.inventory_age_seconds is not None else None),
                "ec2_calls": self.ec2_calls, "s3_calls": self.s3_calls,
                "bucket_facts_source": self.bucket_facts_source, "stale": self.stale,
                "route_table": self.route_table,
                "route_table_association": self.route_table_association,
                "s3_prefix_list_id": self.s3_prefix_list_id, "endpoints": list(self.endpoints)}


@dataclass(frozen=True)
class Report:
    """One run's report: what every sink receives."""

    run_id: str
    started: float                   # epoch seconds
    duration_seconds: float
    identity: Identity | None
    status: Status
    verdicts: tuple[TargetVerdict, ...] = ()
    errors: tuple[str, ...] = ()
    facts: RunFacts = RunFacts()
    policies: PoliciesSection | None = None
    flow_logs: tuple[Corroboration, ...] = ()   # answers about earlier runs
    observed: ObservedSection | None = None     # the host's own S3 flows (observe.enabled)

    @functools.cached_property
    def summary(self) -> str:
        """The one-line summary (status and the worst flow or target, or the first error)."""
        return summary_line(self.status, self.verdicts, self.errors, self.observed)

    @property
    def observed_names(self) -> tuple[ObservedName, ...]:
        """The names this host's software was seen resolving (DNS responses it received) or
        using (a live flow to one of their addresses), now or in earlier runs kept in
        ``state_dir``, most recent first; () when observation is off."""
        return self.observed.names if self.observed is not None else ()

    def host_seen_using(self, host: str) -> bool:
        """True when this host's software was seen resolving ``host`` or connecting to its
        addresses (see :attr:`observed_names`)."""
        return self.observed is not None and self.observed.was_seen(host)

    @property
    def time_ms(self) -> int:
        """When the run started, in epoch milliseconds: the instant ``time`` shows."""
        return int(self.started * 1000)

    @property
    def time(self) -> str:
        """When the run started, as the report writes it."""
        return iso_time(self.time_ms)

    @property
    def targets_not_ok(self) -> int:
        """How many targets are not OK."""
        return sum(1 for v in self.verdicts if v.status is not Status.OK)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (not redacted: use :attr:`document` for output)."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "time": self.time,
            "duration_ms": round(self.duration_seconds * 1000, 1),
            "agent": {"name": AGENT_NAME, "version": __version__},
            "identity": self.identity.to_dict() if self.identity else None,
            "status": self.status.name,
            "exit_code": int(self.status),
            "summary": self.summary,
            "targets": [v.to_dict() for v in self.verdicts],
            "facts": self.facts.to_dict(),
            "errors": list(self.errors),
        }
        if self.policies is not None:
            out["policies"] = self.policies.to_dict()
        if self.flow_logs:
            out["flow_logs"] = [c.to_dict() for c in self.flow_logs]
        if self.observed is not None:
            out["observed"] = self.observed.to_dict(lambda t: iso_time(int(t * 1000)))
        return out

    @functools.cached_property
    def document(self) -> dict[str, Any]:
        """The JSON document with every signature, credential and token redacted: what JSON
        sinks write and what ``check --format json`` prints."""
        return redact_document(self.to_dict())

    def to_json(self) -> str:
        """The redacted document as one line of JSON (JSON Lines friendly)."""
        return render_json(self.document)


def render_json(document: dict[str, Any]) -> str:
    """A JSON document as one line (JSON Lines friendly)."""
    return json.dumps(document, sort_keys=False, separators=(",", ":"))


def unknown_report(reason: str, started: float, ended: float, run_id: str) -> Report:
    """An UNKNOWN report with one reason: a run that could not check anything."""
    return Report(run_id=run_id, started=started, duration_seconds=max(0.0, ended - started),
                  identity=None, status=Status.UNKNOWN, errors=(" ".join(str(reason).split()),))
