"""Live evidence for a check run: proxies, the test transfer, packet probes, reconciliation.

Called by :func:`s3_route_agent.runs.check.run_check` after the verdict engine. Each target's report entry gets
``proxy``, ``transfer``, ``oracle`` (when ``oracle.bucket`` is set), ``probe`` and ``reconcile``
sections; the target's path becomes
``proxy`` when a normal boto3 client would send its traffic through one, and its status gets
worse (never better) when the evidence contradicts the prediction.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from typing import Any, Mapping

from s3_route_agent.config import AgentConfig
from s3_route_agent.engine.model import Facts, PathKind, RouteTargetKind, Status, TargetVerdict
from s3_route_agent.live.oracle_read import read_oracle
from s3_route_agent.report.policies import s3_endpoints
from s3_route_agent.engine.proxy import ProxyDecision, decide_proxy, proxy_address
from s3_route_agent.engine.reconcile import reconcile
from s3_route_agent.live.transfer import plan_transfer, run_transfer
from s3_route_agent.engine.verdict import S3RangeIndex, path_for_address

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LiveOutcome:
    """The verdicts with live evidence applied, and whether the inventory cache must go."""

    verdicts: tuple[TargetVerdict, ...]
    refresh_inventory: bool


def _proxy_verdict(verdict: TargetVerdict, decision: ProxyDecision, facts: Facts,
                   ranges: S3RangeIndex) -> tuple[TargetVerdict, str | None]:
    """The target's verdict when its traffic goes through ``decision``'s proxy."""
    address = proxy_address(decision)
    if address is None and decision.proxy_host:
        try:
            address = socket.getaddrinfo(decision.proxy_host, decision.proxy_port,
                                         type=socket.SOCK_STREAM)[0][4][0]
        except OSError:
            address = None
    where = f"{decision.proxy_host}:{decision.proxy_port}"
    origin = ("the config's proxies (botocore Config(proxies=...))" if decision.source == "config"
              else "the environment (HTTPS_PROXY)")
    evidence = [f"A boto3 client sends {verdict.target.host} through proxy {where} from {origin}"
                f"; NO_PROXY does not exempt {decision.endpoint_url}: the S3 traffic takes the "
                "proxy's path, whatever the host's own routes say."]
    own: dict[str, Any] = {"address": address}
    if address:
        proxy_path = path_for_address(address, facts, ranges)
        own.update(path=proxy_path.path.value, route=proxy_path.route.to_dict()
                   if proxy_path.route else None)
        route = proxy_path.route.route if proxy_path.route else None
        if route is not None and route.target_kind is RouteTargetKind.LOCAL:
            own["path"] = "local"
            evidence.append(f"The proxy address {address} is inside the VPC (route "
                            f"{route.destination} -> local): S3 sees the proxy's own egress, "
                            "not this host's route to S3.")
        else:
            evidence.append(f"The proxy address {address} itself takes path "
                            f"{proxy_path.path.value}" + (f" (route {route.destination} -> "
                                                          f"{route.target_id})." if route else "."))
    allowed = verdict.target.expect.allows(PathKind.PROXY)
    status = Status.OK if allowed else Status.CRITICAL
    reason = f"through proxy {where}" + ("" if allowed else
                                         f"; expected {verdict.target.expect.value}")
    extra = dict(verdict.extra)
    extra["proxy"] = {**decision.to_dict(), "proxy_address": address, "proxy_path": own}
    return dataclasses.replace(verdict, path=PathKind.PROXY, status=status, reason=reason,
                               evidence=verdict.evidence + tuple(evidence), extra=extra), address


def _oracle(plan: Any, verdict: TargetVerdict, facts: Facts, config: AgentConfig,
            ) -> dict[str, Any]:
    """The path oracle through ``plan``'s endpoint, compared with the verdict's prediction.

    Through a proxy the prediction is the proxy's, not this host's, so nothing is compared.
    """
    predicted = verdict.path if verdict.path in (PathKind.GATEWAY, PathKind.INTERFACE,
                                                 PathKind.PUBLIC) else None
    endpoint = next((a.endpoint_id for a in verdict.addresses if a.endpoint_id), None)\
        if predicted in (PathKind.GATEWAY, PathKind.INTERFACE) else None
    types = {e.id: e.type for e in s3_endpoints(facts)}
    return read_oracle(plan, config.oracle.bucket, config.oracle.prefix, types, predicted,
                       endpoint, timeout=config.transfer.timeout_seconds)


def apply_live(config: AgentConfig, verdicts: tuple[TargetVerdict, ...], facts: Facts,
               environ: Mapping[str, str] | None = None) -> LiveOutcome:
    """Proxies always (pure, cheap); transfer and probes when the config enables them."""
    environ = os.environ if environ is None else environ
    ranges = S3RangeIndex(facts.s3_ranges)
    region = facts.identity.region if facts.identity else (config.aws.region or "us-east-1")
    nat_addresses = tuple(a for n in (facts.inventory.nat_gateways if facts.inventory else ())
                          for a in n.private_addresses)
    config_proxies = {"http": config.proxies.http, "https": config.proxies.https}
    out: list[TargetVerdict] = []
    refresh = False
    for verdict in verdicts:
        plan, why_not = plan_transfer(verdict.target, region, config.transfer.bucket)
        endpoint_url = plan.endpoint_url if plan else f"https://{verdict.target.host}"
        decision = decide_proxy(endpoint_url, environ, config_proxies)
        proxy_ip: str | None = None
        if decision.proxied:
            verdict, proxy_ip = _proxy_verdict(verdict, decision, facts, ranges)
        elif decision.bypassed_by:
            extra = dict(verdict.extra)
            extra["proxy"] = decision.to_dict()
            verdict = dataclasses.replace(verdict, extra=extra, evidence=verdict.evidence + (
                f"NO_PROXY entry {decision.bypassed_by!r} exempts {endpoint_url} from the "
                "proxy: the traffic goes direct.",))
        if not (config.transfer.enabled or config.probe.enabled):
            out.append(verdict)
            continue
        if verdict.path in (PathKind.UNRESOLVED, PathKind.UNKNOWN):
            out.append(verdict)
            continue
        transfer: dict[str, Any] | None = None
        oracle: dict[str, Any] | None = None
        probe: dict[str, Any] | None = None
        sniffer = None
        if config.probe.enabled:
            from s3_route_agent.live.probe import SynSniffer
            sniffer = SynSniffer().start()
        if config.transfer.enabled:
            if plan is None:
                transfer = {"outcome": "skipped", "ok": False, "message": why_not,
                            "peer_address": None, "steps": []}
            else:
                transfer = run_transfer(plan, prefix=config.transfer.prefix,
                                        size_bytes=config.transfer.size_bytes,
                                        timeout=config.transfer.timeout_seconds).to_dict()
                if config.oracle.bucket:
                    # Issue 4 section 4: S3 itself states the path, above the prediction.
                    oracle = _oracle(plan, verdict, facts, config)
        if config.probe.enabled:
            from s3_route_agent.live.probe import syn_traceroute
            sniffed = sniffer.stop() if sniffer else None
            if sniffed and not sniffed.get("skipped") and not config.transfer.enabled:
                sniffed = {"skipped": True, "reason": "no transfer to watch (transfer.enabled "
                                                      "is false)"}
            peer = (transfer or {}).get("peer_address")
            first_ip = verdict.addresses[0].ip if verdict.addresses else None
            destination = proxy_ip or peer or first_ip
            port = decision.proxy_port if proxy_ip else config.probe.port
            trace = (syn_traceroute(destination, int(port or 443), config.probe.max_hops,
                                    config.probe.timeout_seconds, nat_addresses)
                     if destination else {"skipped": True, "reason": "no address to trace"})
            probe = {"traceroute": trace, "sniffer": sniffed}
        first_route = (verdict.addresses[0].route.route.target_id
                       if verdict.addresses and verdict.addresses[0].route else None)
        result = reconcile(path=verdict.path, addresses=[a.ip for a in verdict.addresses],
                           route_target=first_route, transfer=transfer, probe=probe,
                           nat_addresses=nat_addresses, proxy_address=proxy_ip,
                           oracle=oracle, expect=verdict.target.expect)
        status = Status.worst([verdict.status, result.status])
        reason = verdict.reason
        if oracle and oracle.get("agrees_with_prediction") is False:
            reason = f"{reason}; S3 states the path is {oracle.get('path') or 'another endpoint'}"
        elif result.contradictions:
            reason = f"{reason}; evidence contradicts the prediction"
        elif transfer and transfer.get("outcome") not in ("ok", "skipped", None):
            reason = f"{reason}; transfer {transfer['outcome']}"
        extra = dict(verdict.extra)
        extra.update({"transfer": transfer, "probe": probe, "reconcile": result.to_dict()})
        if config.oracle.bucket:
            extra["oracle"] = oracle
        refresh = refresh or result.refresh_inventory
        out.append(dataclasses.replace(verdict, status=status, reason=reason, extra=extra,
                                       evidence=verdict.evidence + result.findings))
    return LiveOutcome(verdicts=tuple(out), refresh_inventory=refresh)
