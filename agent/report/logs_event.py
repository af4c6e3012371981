"""The report as one CloudWatch Logs event that Logs Insights can read whole.

Logs Insights discovers the fields of a JSON log event by flattening it (nested objects with
dots, array items by position: ``targets.0.path``), and "can extract a maximum of 200 log event
fields from a JSON log"; fields beyond are not discovered, and a query that names one finds
nothing (CloudWatch Logs user guide, "Supported logs and discovered fields", fields in JSON logs:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html).
A report has about 35 fields per target, so one with more than a handful of targets is over.

:func:`logs_event` keeps a report that fits as it is, and otherwise ships a trimmed shape: every
top-level fact the shipped queries (``cloudwatch/queries``) read — identity, status, summary,
facts — then the targets in a compact form (name, host, path, status; those not OK first) while
they fit, and ``trimmed`` saying what was left out. The full report stays in the JSON Lines file
and on stdout; per-target detail is also in the EMF log group (one line per target).
"""

from __future__ import annotations

from typing import Any, Iterator

LOGS_INSIGHTS_MAX_FIELDS = 200
"""Fields Logs Insights extracts from one JSON log event at most (see the module docstring)."""

# The top-level sections kept whole in a trimmed event (small and bounded), in document order.
_KEPT = ("schema_version", "run_id", "time", "duration_ms", "agent", "identity", "status",
         "exit_code", "summary", "facts")
_TARGET_KEYS = ("name", "host", "path", "status")
_MAX_ERRORS = 5


def flattened_fields(value: Any, prefix: str = "") -> Iterator[str]:
    """The field names Logs Insights discovers in a JSON value: one per leaf (null included),
    objects joined with dots, array items by position."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flattened_fields(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from flattened_fields(item, f"{prefix}.{i}" if prefix else str(i))
    elif prefix:
        yield prefix


def field_count(value: Any) -> int:
    """How many fields Logs Insights discovers in ``value``."""
    return sum(1 for _ in flattened_fields(value))


def logs_event(document: dict[str, Any],
               max_fields: int = LOGS_INSIGHTS_MAX_FIELDS) -> dict[str, Any]:
    """``document`` (a report's JSON document) as it is when Logs Insights can discover all of
    its fields, else the trimmed shape of the module docstring (within ``max_fields``)."""
    total = field_count(document)
    if total <= max_fields:
        return document
    event: dict[str, Any] = {k: document[k] for k in _KEPT if k in document}
    errors = list(document.get("errors") or ())
    event["errors"] = errors[:_MAX_ERRORS]
    targets = list(document.get("targets") or ())
    observed = document.get("observed")
    if isinstance(observed, dict):
        event["observed"] = {"status": observed.get("status"), "source": observed.get("source")}
    trimmed = {"fields": total, "targets": len(targets),
               "targets_not_ok": sum(1 for t in targets if t.get("status") != "OK"),
               "errors": len(errors), "targets_shown": 0,
               "full_report": "the JSON Lines file and stdout; per target: the EMF log group"}
    event["trimmed"] = trimmed
    used = field_count(event)
    shown: list[dict[str, Any]] = []
    for target in sorted(targets, key=lambda t: t.get("status") == "OK"):   # not OK first
        compact = {k: target.get(k) for k in _TARGET_KEYS}
        size = field_count(compact)
        if used + size > max_fields:
            break
        shown.append(compact)
        used += size
    event["targets"] = shown
    trimmed["targets_shown"] = len(shown)
    return event
