"""One check run: gather facts (identity, DNS, inventory, ranges), decide, build the report.

Each collector is handed in by the caller (the CLI or the daemon), so this module wires nothing
itself and every failure becomes a fact or a one-line problem, never an exception that escapes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from s3_route_agent.collectors.bucket_facts import BucketFactsCache
from s3_route_agent.collectors.inventory_cache import InventoryCache
from s3_route_agent.config import AgentConfig
from s3_route_agent.engine.model import (BucketFacts, DnsAnswer, Facts, Identity, Inventory,
                                         S3Range, Status, Target, TargetVerdict)
from s3_route_agent.engine.defaults import judge_default_targets
from s3_route_agent.engine.verdict import evaluate, overall_status
from s3_route_agent.errors import AgentError
from s3_route_agent.live.apply import apply_live
from s3_route_agent.report.document import Report, RunFacts, unknown_report
from s3_route_agent.report.policies import policies_section, unexplained_denials
from s3_route_agent.runs.targets import planned_targets

if TYPE_CHECKING:
    # Imported where used: a warm run with observation off loads neither the socket and
    # process collectors, nor the flow-log step, nor the EC2 collector (issue 13).
    from s3_route_agent.collectors.connections import TrafficCollectors
    from s3_route_agent.collectors.flow_logs import CycleCorroboration
    from s3_route_agent.live.transfer import ClientFor

logger = logging.getLogger(__name__)


@dataclass
class InventorySource:
    """Where this run's inventory came from, for the report and the call budget."""

    origin: str = "none"             # "api", "cache" or "none"
    age_seconds: float | None = None
    ec2_calls: int = 0
    s3_calls: int = 0                # S3 control calls (GetBucketLocation, GetBucketPolicy)
    bucket_facts_origin: str = "none"  # "api", "cache", "mixed" or "none"


@dataclass(frozen=True)
class CheckDeps:
    """The collectors one run uses; built by the CLI or the daemon."""

    identity: Callable[[], Identity]
    resolve: Callable[[str], DnsAnswer]
    ec2_client: Callable[[str], Any]          # region -> boto3 EC2 client
    s3_ranges: Callable[[], tuple[S3Range, ...]]
    s3_client_for: ClientFor                  # (plan, timeout) -> S3 client of a transfer step
    cache_for: Callable[[Identity], InventoryCache] | None = None
    clock: Callable[[], float] = time.time
    # (bucket, agent region) -> what S3 says about the bucket (GetBucketLocation, GetBucketPolicy)
    bucket_facts: Callable[[str, str], BucketFacts] | None = None
    bucket_cache: Callable[[], BucketFactsCache] | None = None
    # The host's own S3 traffic (observe.enabled): built once per config, lives across cycles.
    traffic: TrafficCollectors | None = None
    # This host's ephemeral port range (collectors.host_ports), for the network ACL rules
    ephemeral_ports: Callable[[], tuple[int, int] | None] | None = None


@dataclass(frozen=True)
class CheckResult:
    """A finished run: the report, its status and the verdicts behind it."""

    report: Report
    status: Status
    verdicts: tuple[TargetVerdict, ...] = ()
    facts: Facts | None = None
    errors: tuple[str, ...] = field(default=())
    bucket_facts: tuple[BucketFacts, ...] = ()


# Address space a VPC's ENIs live in (VPC user guide, "VPC CIDR blocks": RFC 1918 and the
# shared 100.64.0.0/10 range; IPv6 unique local addresses). Python's ``is_private`` also counts
# documentation ranges, which are S3 stand-ins in the local world, so it is not used here.
_VPC_SPACE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))


def private_addresses(answers: Iterable[DnsAnswer]) -> tuple[str, ...]:
    """Resolved addresses in VPC private space: the ones that may be endpoint ENIs."""
    found: set[str] = set()
    for answer in answers:
        for addr in answer.addresses:
            ip = ipaddress.ip_address(addr.ip)
            if any(ip.version == net.version and ip in net for net in _VPC_SPACE):
                found.add(addr.ip)
    return tuple(sorted(found))


@contextlib.contextmanager
def counting_ec2_calls(client: Any, source: InventorySource) -> Iterator[None]:
    """Count the EC2 API calls the client makes meanwhile (the fleet's shared request budget).

    The hook is removed afterwards: clients live as long as the config, hooks must not pile up.
    """
    def _count(**_: Any) -> None:
        source.ec2_calls += 1
    unique_id = f"s3-route-agent-count-{id(source)}"
    client.meta.events.register("before-call.ec2.*", _count, unique_id=unique_id)
    try:
        yield
    finally:
        client.meta.events.unregister("before-call.ec2.*", unique_id=unique_id)


@dataclass(frozen=True)
class InventoryOutcome:
    """The inventory a run uses, and what is wrong with it."""

    inventory: Inventory | None
    stale: str | None = None          # set when cached facts stand in for a failed refresh
    stale_warning: bool = False       # the cached facts are older than twice the TTL
    problems: tuple[str, ...] = ()    # set when there are no facts at all


def inventory_for(deps: CheckDeps, config: AgentConfig, identity: Identity,
                  addresses: tuple[str, ...], source: InventorySource,
                  force_refresh: bool = False) -> InventoryOutcome:
    """The inventory: the cached one while fresh, else a refresh (incremental, from the cache).

    When a refresh fails (throttled, unreachable, denied) cached facts are kept and marked stale
    with their age; they make a target WARNING only once older than twice the TTL.
    """
    cache = deps.cache_for(identity) if deps.cache_for else None
    cached = cache.load() if cache else None
    if cached and cached.fresh and not force_refresh and cached.covers(
            addresses, identity.security_group_ids):
        every = config.inventory.route_check_seconds
        if cache is None or not cached.routes_due(every, cache.clock()) or route_table_unchanged(
                deps, identity, cached.inventory, cache, source):
            source.origin, source.age_seconds = "cache", cached.age_seconds
            return InventoryOutcome(cached.inventory)
    from s3_route_agent.collectors.inventory import collect_inventory
    try:
        client = deps.ec2_client(identity.region)
        with counting_ec2_calls(client, source):
            inventory = collect_inventory(
                client, identity.region, identity.vpc_id, identity.subnet_id, addresses,
                clock=deps.clock, previous=cached.inventory if cached else None,
                host_security_group_ids=identity.security_group_ids or None,
                host_addresses=identity.local_ipv4s + identity.ipv6s,
                instance_id=identity.instance_id)
    except AgentError as exc:
        if cached is not None:
            source.origin, source.age_seconds = "cache", cached.age_seconds
            stale = f"refresh failed ({exc.message}); using facts {cached.age_seconds:.0f} s old"
            logger.warning("%s", stale)
            return InventoryOutcome(cached.inventory, stale=stale, stale_warning=(
                cached.age_seconds > 2 * config.inventory.ttl_seconds))
        return InventoryOutcome(None, problems=(exc.message,))
    if cache:
        cache.store(inventory, addresses)
    source.origin, source.age_seconds = "api", 0.0
    return InventoryOutcome(inventory)


def route_table_unchanged(deps: CheckDeps, identity: Identity, inventory: Inventory,
                          cache: InventoryCache, source: InventorySource) -> bool:
    """The route check between refreshes: one DescribeRouteTables call. True (the cached facts
    stand; the check is recorded) when the subnet's route table is the cached one, or when the
    check fails (throttled, unreachable: the cached facts are within their TTL, the next run
    asks again); False when it changed, and the caller refreshes everything.

    Routes decide the path (VPC user guide, "Route priority"), and most changes that move S3
    traffic show there: a gateway endpoint added, removed or (dis)associated adds or removes its
    prefix-list route ("Gateway endpoints": "we automatically add a route ... to the route
    tables you select"), a NAT or internet gateway route replaced, the subnet moved to another
    table.
    """
    from s3_route_agent.collectors.inventory import current_route_table, route_table_signature
    try:
        client = deps.ec2_client(identity.region)
        with counting_ec2_calls(client, source):
            table = current_route_table(client, identity.vpc_id, identity.subnet_id)
    except AgentError as exc:
        logger.warning("route check failed (%s); using the cached facts", exc.message)
        return True
    if route_table_signature(table) == route_table_signature(inventory.route_table):
        cache.mark_routes_checked()
        return True
    logger.info("route check: the route table of %s changed; fetching every fact again",
                identity.subnet_id)
    return False


def checked_buckets(config: AgentConfig, targets: Iterable[Target]) -> tuple[str, ...]:
    """Every bucket the config names: ``buckets``, the targets', the canary and the oracle one."""
    names = [*config.buckets, *(t.bucket for t in targets), config.transfer.bucket,
             config.oracle.bucket]
    return tuple(dict.fromkeys(n for n in names if n))


def bucket_facts_for(deps: CheckDeps, buckets: Iterable[str], region: str,
                     source: InventorySource, force_refresh: bool = False,
                     ) -> tuple[tuple[BucketFacts, ...], dict[str, str]]:
    """Facts of each bucket: from the cache while fresh, else from S3 (then cached).

    Never raises: every S3 failure is already a fact inside BucketFacts. Returns the facts and,
    per bucket, where they came from ("api" or "cache").
    """
    if deps.bucket_facts is None:
        return (), {}
    cache = deps.bucket_cache() if deps.bucket_cache else None
    out: list[BucketFacts] = []
    origins: dict[str, str] = {}
    fresh = cache.load_fresh() if cache and not force_refresh else {}
    for bucket in buckets:
        cached = fresh.get(bucket)
        if cached is not None:
            out.append(cached)
            origins[bucket] = "cache"
            continue
        fetched = deps.bucket_facts(bucket, region)
        source.s3_calls += fetched.s3_calls
        out.append(fetched)
        origins[bucket] = "api"
    if cache and "api" in origins.values():
        cache.store(b for b in out if origins[b.bucket] == "api")
    kinds = set(origins.values())
    source.bucket_facts_origin = ("none" if not kinds else kinds.pop() if len(kinds) == 1
                                  else "mixed")
    return tuple(out), origins


class _BackgroundCall:
    """``fn()`` started in a thread now; :meth:`result` waits for it (and re-raises)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._box: dict[str, Any] = {}

        def target() -> None:
            try:
                self._box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self._box["error"] = exc
        self._thread = threading.Thread(target=target, name="bucket-facts", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        """What ``fn`` returned (its exception raised here)."""
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box.get("value")


def _bucket_api_needed(deps: CheckDeps, buckets: tuple[str, ...], force_refresh: bool) -> bool:
    """True when some bucket's facts must come from S3 (none fresh in the cache)."""
    if deps.bucket_facts is None or not buckets:
        return False
    if force_refresh or deps.bucket_cache is None:
        return True
    fresh = deps.bucket_cache().load_fresh()
    return any(b not in fresh for b in buckets)


def run_check(config: AgentConfig, deps: CheckDeps, force_refresh: bool = False) -> CheckResult:
    """Gather, decide and report once. Never raises for a collector failure."""
    started = deps.clock()
    run_id = uuid.uuid4().hex
    errors: list[str] = []
    try:
        identity = deps.identity()
    except AgentError as exc:
        logger.error("identity: %s", exc.message)
        report = unknown_report(exc.message, started, deps.clock(), run_id)
        return CheckResult(report=report, status=Status.UNKNOWN, errors=report.errors)

    traffic = deps.traffic if config.observe.enabled else None
    targets, discovered = planned_targets(config, identity.region, traffic)
    if traffic is not None:
        traffic.begin_run()
    dns_started = deps.clock()
    answers = {host: deps.resolve(host) for host in dict.fromkeys(t.host for t in targets)}
    dns_ended = deps.clock()
    source = InventorySource()
    # Bucket facts (issue 4 sections 2 and 3): their failures are facts in the policies
    # section, never errors that change a path or the status. When S3 must be asked, that runs
    # beside the EC2 inventory: the two wait on different services (a cold run's wall time).
    bucket_names = checked_buckets(config, targets)
    bucket_job = _BackgroundCall(lambda: bucket_facts_for(
        deps, bucket_names, identity.region, source, force_refresh)) if _bucket_api_needed(
        deps, bucket_names, force_refresh) else None
    outcome = inventory_for(deps, config, identity, private_addresses(answers.values()),
                            source, force_refresh)
    inventory, problems = outcome.inventory, list(outcome.problems)
    try:
        ranges = deps.s3_ranges()
    except AgentError as exc:
        ranges = ()
        errors.append(exc.message)
    buckets, origins = (bucket_job.result() if bucket_job is not None else bucket_facts_for(
        deps, bucket_names, identity.region, source, force_refresh))
    facts = Facts(identity=identity, inventory=inventory, s3_ranges=ranges,
                  problems=tuple(problems), stale=outcome.stale,
                  stale_warning=outcome.stale_warning,
                  bucket_regions=tuple((b.bucket, b.region) for b in buckets if b.region),
                  ephemeral_ports=deps.ephemeral_ports() if deps.ephemeral_ports else None)
    verdicts = evaluate(targets, answers, facts)
    if discovered:
        from s3_route_agent.runs.observe import with_discovery_evidence
        verdicts = with_discovery_evidence(verdicts, discovered)
    # Live evidence (issue 3): proxies, test transfer, probes; may only make a status worse.
    live = apply_live(config, verdicts, facts, deps.s3_client_for)
    verdicts = live.verdicts
    if live.refresh_inventory and deps.cache_for is not None:
        # Evidence contradicted the facts: the next run fetches the inventory again.
        deps.cache_for(identity).invalidate()
        errors.append("live evidence contradicts the EC2 facts: the inventory cache was "
                      "dropped, the next run fetches it again")
    # The host's own S3 flows (issue 11), from this run's facts: no extra AWS call.
    observed = None
    if traffic is not None:
        from s3_route_agent.engine.observed import LookupWindow
        from s3_route_agent.runs.observe import observe_step
        window = LookupWindow(tuple(answers), dns_started, dns_ended)
        observed = observe_step(config, traffic, facts, answers, (window,))
        traffic.end_run()
    # Day-one rule: a default target nobody configured pages only when the host uses it.
    verdicts = judge_default_targets(verdicts, observed)
    status = overall_status(verdicts, problems)
    if observed is not None:
        status = Status.worst([status, observed.status])
    if errors and status is Status.OK:
        status = Status.WARNING
    for problem in problems + errors:
        logger.error("%s", problem)
    policies = (policies_section(config, facts, buckets, origins)
                if deps.bucket_facts is not None else None)
    if policies is not None:
        unexplained = unexplained_denials(policies, verdicts)
        if unexplained:
            policies = dataclasses.replace(policies, findings=policies.findings + unexplained)
    run_facts = RunFacts.of(inventory, source=source.origin, age_seconds=source.age_seconds,
                            ec2_calls=source.ec2_calls, s3_calls=source.s3_calls,
                            bucket_facts_source=source.bucket_facts_origin, stale=outcome.stale)
    report = Report(run_id=run_id, started=started, duration_seconds=deps.clock() - started,
                    identity=identity, status=status, verdicts=verdicts,
                    errors=tuple(problems + errors), facts=run_facts, policies=policies,
                    observed=observed)
    return CheckResult(report=report, status=status, verdicts=verdicts, facts=facts,
                       errors=report.errors, bucket_facts=buckets)


def with_flow_logs(flow_logs: CycleCorroboration, report: Report, window_start: float,
                   window_end: float, now: float) -> Report:
    """``report`` with the flow-log answers about earlier runs attached; this run's transfer
    window (the addresses its sockets really reached) is queried for a later run."""
    peers = {v.transfer.peer_address for v in report.verdicts
             if v.transfer is not None and v.transfer.peer_address}
    done = flow_logs.step(report.run_id, report.identity, peers, window_start, window_end, now)
    return dataclasses.replace(report, flow_logs=report.flow_logs + done) if done else report
