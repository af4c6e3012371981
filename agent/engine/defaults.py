"""Day-one defaults that do not page for nothing. Pure.

With no ``targets`` configured the agent checks built-in names (the regional and the legacy
global S3 name, and each bucket's) that nobody chose: on a host outside us-east-1 the legacy
global name ``s3.amazonaws.com`` is public whether or not any software uses it. The rule here
(:func:`judge_default_targets`): a **default** target whose status is CRITICAL stays CRITICAL
only when the host's software was seen resolving or using its name (the ``observed`` section,
:meth:`ObservedSection.was_seen`); otherwise it becomes WARNING, with the sentence that says
why. A target the user configured (origin ``config``) keeps its status, and so does a name the
host was seen using (origin ``observed``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable

from s3_route_agent.engine.model import Status, TargetVerdict
from s3_route_agent.engine.observed import ObservedSection

logger = logging.getLogger(__name__)


def default_target_status(status: Status, origin: str, seen: bool) -> Status:
    """The status of one target under the day-one rule: a CRITICAL default target that the
    host was not seen using is WARNING; everything else keeps its status."""
    if origin == "default" and status is Status.CRITICAL and not seen:
        return Status.WARNING
    return status


def unseen_default_sentence(host: str, observing: bool) -> str:
    """Why a default target is WARNING rather than CRITICAL."""
    seen_how = ("this host's software was not seen resolving or using it"
                if observing else
                "the host's own traffic is not observed (observe.enabled: false), so its use "
                "cannot be seen")
    return (f"{host} is a default target (no `targets` configured) and {seen_how}: WARNING, "
            f"not CRITICAL. It turns CRITICAL once the host is seen using the name; list it "
            f"under `targets` to have its path judged CRITICAL whether or not it is used.")


def judge_default_targets(verdicts: Iterable[TargetVerdict],
                          observed: ObservedSection | None) -> tuple[TargetVerdict, ...]:
    """``verdicts`` with the day-one rule applied (see the module docstring). ``observed`` is
    the run's observed section; None when observation is off (then no name is seen)."""
    out: list[TargetVerdict] = []
    for verdict in verdicts:
        target = verdict.target
        seen = observed is not None and observed.was_seen(target.host)
        status = default_target_status(verdict.status, target.origin, seen)
        if status is verdict.status:
            out.append(verdict)
            continue
        sentence = unseen_default_sentence(target.host, observed is not None)
        out.append(dataclasses.replace(
            verdict, status=status, reason=f"{verdict.reason} (default target, not seen in use)",
            evidence=verdict.evidence + (sentence,)))
    return tuple(out)
