"""The host's real S3 traffic: the observation step of each check and daemon cycle, and
``s3-route-agent observe`` (a live, top-like view on a TTY; one JSON snapshot otherwise).

The step uses only facts the run already has (identity, EC2 inventory, S3 ranges, the agent's
own DNS answers): it makes no AWS call. It drains the DNS sniffer (probes on), builds the S3
membership rules, takes one look at the host's connections, judges it with the engine
(:func:`s3_route_agent.engine.observed.judge_observation`) and keeps the state for the next look.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import time
from typing import IO, Any, Iterable, Mapping

from s3_route_agent.collectors.connections import TrafficCollectors
from s3_route_agent.config import AgentConfig
from s3_route_agent.engine.hostnames import parse_s3_host
from s3_route_agent.engine.model import DnsAnswer, Facts, Status, Target, TargetVerdict
from s3_route_agent.engine.observed import (DiscoveredTarget, LookupWindow, ObservedSection,
                                            ObservedState, ObserveRules, S3Membership,
                                            discovered_targets, host_sightings,
                                            judge_observation)
from s3_route_agent.engine.proxy import decide_proxy, proxy_address
from s3_route_agent.engine.routes import s3_range_index
from s3_route_agent.errors import AgentError

logger = logging.getLogger(__name__)


def observe_rules(config: AgentConfig) -> ObserveRules:
    """The rules a look is judged by, from the ``observe`` section."""
    return ObserveRules(expect=config.observe.expect,
                        nat_price_per_gb=config.observe.nat_price_per_gb)


def proxy_endpoints(config: AgentConfig, region: str,
                    environ: Mapping[str, str] | None = None) -> tuple[tuple[str, int], ...]:
    """The (address, port) of the proxy that S3 traffic from this host uses, if any: the rules
    botocore applies (:func:`~s3_route_agent.engine.proxy.decide_proxy`) to the region's S3
    endpoint. A proxy named by host name is resolved here (one lookup)."""
    env = os.environ if environ is None else environ
    decision = decide_proxy(f"https://s3.{region}.amazonaws.com", env,
                            {"http": config.proxies.http, "https": config.proxies.https})
    if not decision.proxied or not decision.proxy_host or not decision.proxy_port:
        return ()
    literal = proxy_address(decision)
    if literal:
        return ((literal, decision.proxy_port),)
    try:
        infos = socket.getaddrinfo(decision.proxy_host, decision.proxy_port,
                                   type=socket.SOCK_STREAM)
    except OSError as exc:
        logger.warning("cannot resolve the proxy %s: %s", decision.proxy_host, exc)
        return ()
    return tuple(dict.fromkeys((str(info[4][0]), decision.proxy_port) for info in infos))


def s3_answer_addresses(answers: Mapping[str, DnsAnswer], state: ObservedState) -> set[str]:
    """Addresses S3 names resolved to: the agent's own answers (its targets are S3 names) and
    the S3 names the host's software was seen resolving."""
    out = {a.ip for answer in answers.values() if answer.ok for a in answer.addresses}
    out.update(a for record in state.names if record.resolved and parse_s3_host(record.name).is_s3
               for a in record.addresses)
    return out


def observe_step(config: AgentConfig, traffic: TrafficCollectors, facts: Facts,
                 answers: Mapping[str, DnsAnswer] | None = None,
                 windows: Iterable[LookupWindow] = (), store: bool = True,
                 environ: Mapping[str, str] | None = None) -> ObservedSection:
    """One look at the host's S3 traffic, judged; the state kept for the next look (written to
    ``state_dir`` when ``store``, else only remembered in memory: ``observe`` must not take the
    daemon's byte counts). Never raises."""
    answers = answers or {}
    sightings = ()
    notes: list[str] = []
    if traffic.sniffer is not None:
        sightings = host_sightings(traffic.sniffer.drain(), windows)
        if traffic.sniffer.skipped:
            notes.append(f"DNS sniffer skipped: {traffic.sniffer.skipped}")
    state, problems = traffic.load_state()
    region = facts.region or config.aws.region or "us-east-1"
    membership = S3Membership(
        facts, s3_range_index(tuple(facts.s3_ranges)), proxy_endpoints(config, region, environ),
        s3_answer_addresses(answers, state) | {a for s in sightings for a in s.addresses})
    observation = traffic.observer.look(membership.networks())
    agent_answers = {host: [a.ip for a in answer.addresses]
                     for host, answer in answers.items() if answer.ok}
    section, new_state = judge_observation(observation, facts, membership, state,
                                           observe_rules(config), agent_answers, sightings)
    if store:
        problems += traffic.keep_state(new_state)
    else:
        traffic.memory, traffic.stored = new_state, False
    for problem in problems:
        logger.warning("%s", problem)
    return dataclasses.replace(section, errors=section.errors + tuple(problems),
                               notes=section.notes + tuple(notes))


def iso_seconds(epoch: float) -> str:
    """Epoch seconds as the report writes times."""
    from s3_route_agent.report.document import iso_time
    return iso_time(int(epoch * 1000))


def discovered_for(config: AgentConfig, traffic: TrafficCollectors | None,
                   targets: Iterable[Target]) -> tuple[DiscoveredTarget, ...]:
    """The names this host's software was seen resolving or using that join the default
    targets: only when no targets are configured, at most ``observe.discovered_targets``."""
    if traffic is None or config.targets or config.observe.discovered_targets <= 0:
        return ()
    state, _ = traffic.load_state()
    return discovered_targets(state.names, config.observe.discovered_targets,
                              [t.host for t in targets], config.default_expect, iso_seconds)


def with_discovery_evidence(verdicts: tuple[TargetVerdict, ...],
                            discovered: Iterable[DiscoveredTarget]) -> tuple[TargetVerdict, ...]:
    """``verdicts`` with, first in the evidence of each discovered target, why it is checked."""
    why = {d.target.name: d.evidence for d in discovered}
    if not why:
        return verdicts
    return tuple(dataclasses.replace(v, evidence=(why[v.target.name],) + v.evidence)
                 if v.target.name in why else v for v in verdicts)


# ---- s3-route-agent observe ---------------------------------------------------------------------

def observe_facts(config: AgentConfig, deps: Any) -> Facts:
    """Identity, the inventory (the cached one while fresh, as ``check`` uses it) and the S3
    ranges, for ``observe``; raises AgentError when the identity is unknown."""
    from s3_route_agent.runs.check import InventorySource, inventory_for
    identity = deps.identity()
    outcome = inventory_for(deps, config, identity, (), InventorySource())
    problems = list(outcome.problems)
    try:
        ranges = deps.s3_ranges()
    except AgentError as exc:
        ranges = ()
        problems.append(exc.message)
    return Facts(identity=identity, inventory=outcome.inventory, s3_ranges=ranges,
                 problems=tuple(problems), stale=outcome.stale,
                 stale_warning=outcome.stale_warning)


def snapshot_document(section: ObservedSection, facts: Facts) -> dict[str, Any]:
    """``observe``'s JSON snapshot: the host, the status, the ``observed`` section, problems."""
    ident = facts.identity
    return {"command": "observe", "time": iso_seconds(section.time),
            "identity": ident.to_dict() if ident else None, "status": section.status.name,
            "exit_code": int(section.status), "observed": section.to_dict(iso_seconds),
            "errors": list(facts.problems)}


def run_observe(config: AgentConfig, deps: Any, interval: float = 2.0, count: int | None = None,
                out: IO[str] | None = None, tty: bool | None = None,
                environ: Mapping[str, str] | None = None) -> int:
    """``s3-route-agent observe``: refresh a top-like view every ``interval`` seconds on a TTY
    (``count`` refreshes, or until Ctrl-C; exit 0), else print one JSON snapshot (exit: the
    observed status)."""
    from s3_route_agent.redact import redact, redact_obj
    from s3_route_agent.report.document import render_json
    from s3_route_agent.report.observed_view import render_top
    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    env = os.environ if environ is None else environ
    traffic: TrafficCollectors = deps.traffic
    facts = observe_facts(config, deps)
    try:
        if not tty:
            section = observe_step(config, traffic, facts, store=False, environ=env)
            out.write(render_json(redact_obj(snapshot_document(section, facts))) + "\n")
            return int(section.status)
        color = not env.get("NO_COLOR")     # https://no-color.org: any non-empty value
        shown = 0
        while count is None or shown < count:
            if shown:
                time.sleep(interval)
            section = observe_step(config, traffic, facts, store=False, environ=env)
            width = _terminal_width(out)
            out.write("\x1b[H\x1b[2J" + redact(render_top(section, facts, interval, width, color))
                      + "\n")
            out.flush()
            shown += 1
        return int(Status.OK)
    except KeyboardInterrupt:
        return int(Status.OK)
    finally:
        traffic.close()


def _terminal_width(out: IO[str]) -> int:
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    return columns if columns > 0 else 160      # a pseudo-terminal may report no size
