"""The report: one JSON document per run (schema in agent/report/report.schema.json) and its
text rendering for people. Every sink receives the same document."""

from __future__ import annotations

import datetime as _dt
import json
import logging
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterable

from s3_route_agent import __version__
from s3_route_agent.engine.model import Identity, Inventory, Status, TargetVerdict

if TYPE_CHECKING:
    from s3_route_agent.runs.check import InventorySource

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0"


def report_schema() -> dict[str, Any]:
    """The JSON Schema every report validates against."""
    text = resources.files("s3_route_agent.report").joinpath("report.schema.json").read_text("utf-8")
    return json.loads(text)


def _iso(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def summary_line(status: Status, verdicts: Iterable[TargetVerdict], errors: list[str]) -> str:
    """One line: the status and what is wrong, for STATUS=, stderr and alerts."""
    verdicts = list(verdicts)
    if errors and not verdicts:
        return f"{status.name}: {errors[0]}"
    bad = [v for v in verdicts if v.status is not Status.OK]
    if not bad:
        paths = ", ".join(f"{v.target.name}={v.path.value}" for v in verdicts)
        return f"{status.name}: {len(verdicts)} target(s) as expected ({paths})"
    worst = sorted(bad, key=lambda v: -[Status.OK, Status.WARNING, Status.UNKNOWN,
                                        Status.CRITICAL].index(v.status))
    head = worst[0]
    more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
    return f"{status.name}: {head.target.name} {head.target.host}: {head.reason}{more}"


def build_report(*, run_id: str, started: float, duration: float, identity: Identity | None,
                 status: Status, verdicts: tuple[TargetVerdict, ...], errors: list[str],
                 inventory: Inventory | None, source: "InventorySource",
                 stale: str | None = None,
                 policies: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report document for one run (``policies`` only when bucket facts were collected)."""
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "time": _iso(started),
        "duration_ms": round(duration * 1000, 1),
        "agent": {"name": "s3-route-agent", "version": __version__},
        "identity": identity.to_dict() if identity else None,
        "status": status.name,
        "exit_code": int(status),
        "summary": summary_line(status, verdicts, errors),
        "targets": [v.to_dict() for v in verdicts],
        "facts": {
            "inventory_source": source.origin,
            "inventory_age_seconds": (round(source.age_seconds, 1)
                                      if source.age_seconds is not None else None),
            "ec2_calls": source.ec2_calls,
            "s3_calls": source.s3_calls,
            "bucket_facts_source": source.bucket_facts_origin,
            "stale": stale,
            "route_table": inventory.route_table.id if inventory and inventory.route_table else None,
            "route_table_association": (inventory.route_table.association
                                        if inventory and inventory.route_table else None),
            "s3_prefix_list_id": inventory.s3_prefix_list_id if inventory else None,
            "endpoints": [e.id for e in inventory.endpoints] if inventory else [],
        },
        "errors": list(errors),
    }
    if policies is not None:
        report["policies"] = policies
    return report


def render_json(report: dict[str, Any]) -> str:
    """The report as one line of JSON (JSON Lines friendly)."""
    return json.dumps(report, sort_keys=False, separators=(",", ":"))
