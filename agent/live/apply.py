"""Live evidence for a check run: proxies, the test transfer, packet probes, reconciliation.

Called by :func:`s3_route_agent.runs.check.run_check` after the verdict engine. Each verdict gets
its typed sections (:mod:`s3_route_agent.engine.evidence`): ``proxy`` when a normal boto3 client
would send the target's traffic through a proxy (the path becomes ``proxy``) or NO_PROXY exempts
it; ``transfer``, ``oracle`` (when ``oracle.bucket`` is set), ``probe`` and ``reconciliation``
when transfers or probes are enabled. The status gets worse (never better) when the evidence
contradicts the prediction.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from typing import Mapping

from s3_route_agent.config import AgentConfig
from s3_route_agent.engine.evidence import (ProbeEvidence, ProxyEvidence, ProxyRoute,
                                            SnifferResult, Traceroute, TransferResult)
from s3_route_agent.engine.model import (PRIVATE_PATHS, Facts, PathKind, RouteTargetKind, Status,
                                         TargetVerdict)
from s3_route_agent.engine.proxy import ProxyDecision, decide_proxy, proxy_address
from s3_route_agent.engine.routes import S3RangeIndex, s3_range_index
from s3_route_agent.engine.verdict import path_for_address
from s3_route_agent.live.transfer import ClientFor, plan_transfer, run_transfer

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LiveOutcome:
    """The verdicts with live evidence applied, and whether the inventory cache must go."""

    verdicts: tuple[TargetVerdict, ...]
    refresh_inventory: bool


def _proxy_verdict(verdict: TargetVerdict, decision: ProxyDecision, facts: Facts,
                   ranges: S3RangeIndex) -> TargetVerdict:
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
    proxy_route = ProxyRoute(address)
    if address:
        own = path_for_address(address, facts, ranges)
        route = own.route.route if own.route else None
        if route is not None and route.target_kind is RouteTargetKind.LOCAL:
            proxy_route = ProxyRoute(address, "local", own.route)
            evidence.append(f"The proxy address {address} is inside the VPC (route "
                            f"{route.destination} -> local): S3 sees the proxy's own egress, "
                            "not this host's route to S3.")
        else:
            proxy_route = ProxyRoute(address, own.path.value, own.route)
            evidence.append(f"The proxy address {address} itself takes path "
                            f"{own.path.value}" + (f" (route {route.destination} -> "
                                                   f"{route.target_id})." if route else "."))
    allowed = verdict.target.expect.allows(PathKind.PROXY)
    status = Status.OK if allowed else Status.CRITICAL
    reason = f"through proxy {where}" + ("" if allowed else
                                         f"; expected {verdict.target.expect.value}")
    return dataclasses.replace(verdict, path=PathKind.PROXY, status=status, reason=reason,
                               evidence=verdict.evidence + tuple(evidence),
                               proxy=ProxyEvidence(decision, proxy_route))


def apply_live(config: AgentConfig, verdicts: tuple[TargetVerdict, ...], facts: Facts,
               s3_client_for: ClientFor, environ: Mapping[str, str] | None = None,
               ) -> LiveOutcome:
    """Proxies always (pure, cheap); transfer and probes when the config enables them.

    ``s3_client_for(plan, timeout)`` builds the S3 client of each transfer and oracle request.
    """
    # One copy of the environment per run: each target's proxy decision reads all of it, and
    # os.environ decodes every name and value on each pass.
    environ = dict(os.environ) if environ is None else environ
    ranges = s3_range_index(tuple(facts.s3_ranges))
    region = facts.region or config.aws.region or "us-east-1"
    nat_addresses = tuple(a for n in (facts.inventory.nat_gateways if facts.inventory else ())
                          for a in n.private_addresses)
    config_proxies = {"http": config.proxies.http, "https": config.proxies.https}
    endpoint_types = {e.id: e.type for e in (facts.inventory.s3_endpoints()
                                             if facts.inventory else ())}
    out: list[TargetVerdict] = []
    refresh = False
    for verdict in verdicts:
        plan, why_not = plan_transfer(verdict.target, region, config.transfer.bucket)
        endpoint_url = plan.endpoint_url if plan else f"https://{verdict.target.host}"
        decision = decide_proxy(endpoint_url, environ, config_proxies)
        if decision.proxied:
            verdict = _proxy_verdict(verdict, decision, facts, ranges)
        elif decision.bypassed_by:
            verdict = dataclasses.replace(
                verdict, proxy=ProxyEvidence(decision), evidence=verdict.evidence + (
                    f"NO_PROXY entry {decision.bypassed_by!r} exempts {endpoint_url} from the "
                    "proxy: the traffic goes direct.",))
        if not (config.transfer.enabled or config.probe.enabled) \
                or verdict.path in (PathKind.UNRESOLVED, PathKind.UNKNOWN):
            out.append(verdict)
            continue
        # Only transfers and probes need these (a check without them never loads them).
        from s3_route_agent.engine.reconcile import reconcile
        from s3_route_agent.live.oracle_read import read_oracle
        proxy_ip = verdict.proxy.proxy_address if verdict.proxy else None
        transfer: TransferResult | None = None
        oracle = None
        probe: ProbeEvidence | None = None
        sniffer = None
        if config.probe.enabled:
            from s3_route_agent.live.probe import SynSniffer
            sniffer = SynSniffer().start()
        if config.transfer.enabled:
            if plan is None:
                transfer = TransferResult.skipped(verdict.target.host, why_not or "no plan")
            else:
                transfer = run_transfer(plan, client_for=s3_client_for,
                                        prefix=config.transfer.prefix,
                                        size_bytes=config.transfer.size_bytes,
                                        timeout=config.transfer.timeout_seconds,
                                        stale_after_seconds=config.transfer.stale_canary_seconds)
                if config.oracle.bucket and verdict.path is PathKind.BLOCKED:
                    # Dropped before it reaches S3: S3 cannot state a path, and every oracle
                    # read would only wait for its timeout.
                    verdict = dataclasses.replace(verdict, evidence=verdict.evidence + (
                        "No path-oracle read: the path is blocked, S3 never sees the "
                        "request.",))
                elif config.oracle.bucket:
                    # Issue 4 section 4: S3 itself states the path, above the prediction. Through
                    # a proxy the prediction is the proxy's, not this host's: nothing is compared.
                    predicted = verdict.path if verdict.path in (*PRIVATE_PATHS,
                                                                 PathKind.PUBLIC) else None
                    endpoint = next((a.endpoint_id for a in verdict.addresses if a.endpoint_id),
                                    None) if predicted in PRIVATE_PATHS else None
                    oracle = read_oracle(plan, config.oracle.bucket, config.oracle.prefix,
                                         endpoint_types, predicted, endpoint,
                                         timeout=config.transfer.timeout_seconds,
                                         client_for=s3_client_for)
        if config.probe.enabled:
            from s3_route_agent.live.probe import syn_traceroute
            sniffed = sniffer.stop() if sniffer else None
            if sniffed is not None and not sniffed.skipped and not config.transfer.enabled:
                sniffed = SnifferResult.skip("no transfer to watch (transfer.enabled is false)")
            peer = transfer.peer_address if transfer else None
            first_ip = verdict.addresses[0].ip if verdict.addresses else None
            destination = proxy_ip or peer or first_ip
            port = verdict.proxy.decision.proxy_port if proxy_ip and verdict.proxy \
                else config.probe.port
            trace = (syn_traceroute(destination, int(port or 443), config.probe.max_hops,
                                    config.probe.timeout_seconds, nat_addresses)
                     if destination else Traceroute.skip("no address to trace"))
            probe = ProbeEvidence(traceroute=trace, sniffer=sniffed)
        first_route = (verdict.addresses[0].route.route.target_id
                       if verdict.addresses and verdict.addresses[0].route else None)
        result = reconcile(path=verdict.path, addresses=[a.ip for a in verdict.addresses],
                           route_target=first_route, transfer=transfer, probe=probe,
                           nat_addresses=nat_addresses, proxy_address=proxy_ip,
                           oracle=oracle, expect=verdict.target.expect)
        status = Status.worst([verdict.status, result.status])
        reason = verdict.reason
        if oracle is not None and oracle.evidence.agrees is False:
            stated = oracle.evidence.path.value if oracle.evidence.path else "another endpoint"
            reason = f"{reason}; S3 states the path is {stated}"
        elif result.contradictions:
            reason = f"{reason}; evidence contradicts the prediction"
        elif transfer is not None and transfer.outcome not in ("ok", "skipped"):
            reason = f"{reason}; transfer {transfer.outcome}"
        refresh = refresh or result.refresh_inventory
        out.append(dataclasses.replace(verdict, status=status, reason=reason,
                                       evidence=verdict.evidence + result.findings,
                                       transfer=transfer, oracle=oracle, probe=probe,
                                       reconciliation=result))
    return LiveOutcome(verdicts=tuple(out), refresh_inventory=refresh)
