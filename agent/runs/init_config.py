"""``s3-route-agent init``: write a commented config for this host.

The facts come from instance metadata (IMDSv2) when it answers: region, VPC, subnet, instance
and zone go into the header and the commented overrides, so the file explains itself. The
written config pins none of them (each run asks IMDS), so the same file fits every host of a
fleet. An existing file is never replaced without ``--force``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional

from s3_route_agent.engine.model import Identity
from s3_route_agent.errors import AgentError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostFacts:
    """What init knows about this host: IMDS's identity, or why IMDS did not answer."""

    identity: Optional[Identity]
    problem: Optional[str] = None


def gather_host_facts(identity: Callable[[], Identity]) -> HostFacts:
    """Ask ``identity`` (IMDS, wired by the caller); its failure is a fact, not an error."""
    try:
        return HostFacts(identity())
    except AgentError as exc:
        logger.warning("instance metadata: %s", exc.message)
        return HostFacts(None, exc.message)


def render_init_config(facts: HostFacts, now: Optional[float] = None) -> str:
    """The commented YAML config for ``facts`` (valid as written: ``validate-config`` passes)."""
    when = _dt.datetime.fromtimestamp(now if now is not None else _dt.datetime.now().timestamp(),
                                      _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ident = facts.identity
    region = ident.region if ident else "REGION"
    lines = ["# s3-route-agent configuration, written by `s3-route-agent init` on " + when]
    if ident is not None:
        lines += [f"# for {ident.instance_id or 'this host'} in {ident.region} "
                  f"({ident.vpc_id}, {ident.subnet_id}"
                  + (f", {ident.availability_zone}" if ident.availability_zone else "")
                  + "), from instance metadata (IMDSv2).",
                  "# Region, VPC and subnet are asked from instance metadata at every run, so "
                  "this file",
                  "# fits every host of a fleet; they are pinned below only as comments."]
    else:
        lines += [f"# Instance metadata did not answer ({facts.problem}).",
                  "# On a host that is not EC2, uncomment aws.region and identity below."]
    lines += [
        "# Every key is in the README's configuration table; `s3-route-agent validate-config`",
        "# checks this file and prints the targets `check` will use.",
        "",
        "# aws:",
        f"#   region: {region}",
        "# identity:",
        f"#   vpc_id: {ident.vpc_id if ident else 'vpc-...'}",
        f"#   subnet_id: {ident.subnet_id if ident else 'subnet-...'}",
        "",
        "# The buckets your software uses: each adds BUCKET.s3.{region}.amazonaws.com and",
        "# BUCKET.s3.amazonaws.com to the default targets (and its region and policy to the",
        "# report).",
        "buckets: []",
        "#  - my-app-bucket",
        "",
        f"# With no targets the agent checks s3.{region}.amazonaws.com and s3.amazonaws.com",
        "# (and each bucket's two names); such a default target is CRITICAL only when this",
        "# host's software is seen using the name, WARNING otherwise. A target listed here",
        "# is judged against its expect whether or not it is used:",
        "# targets:",
        "#   - name: regional",
        "#     host: s3.{region}.amazonaws.com",
        "#     expect: gateway      # gateway, interface, private, public or any",
        "",
        "# The path every target without an expect must take (private: gateway or interface).",
        "default_expect: private",
        "",
        "# Where `run` sends its reports (stdout alone when none is enabled):",
        "# outputs:",
        "#   file:",
        "#     path: /var/log/s3-route-agent/reports.jsonl",
        "",
        "state_dir: /var/lib/s3-route-agent",
        "",
    ]
    return "\n".join(lines)


def write_init_config(path: str, text: str, force: bool = False) -> None:
    """Write ``text`` to ``path`` (``-``: stdout); refuse to replace a file unless ``force``."""
    if path == "-":
        sys.stdout.write(text)
        return
    if os.path.lexists(path) and not force:
        raise AgentError("invalid_argument", f"{path} exists; not replaced (--force replaces it)")
    from s3_route_agent.statefile import replace_file
    try:
        replace_file(path, text, mode=0o644)
    except OSError as exc:
        raise AgentError("invalid_argument",
                         f"cannot write {path}: {exc.strerror or exc}") from None
