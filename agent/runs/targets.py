"""Which targets a run checks: the configured ones, else the built-in defaults plus the names the
host's software was seen using. Apart from ``runs.check`` so that ``validate-config`` prints the
same list without loading the check's collectors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from s3_route_agent.config import AgentConfig, targets_for

if TYPE_CHECKING:
    from s3_route_agent.collectors.connections import TrafficCollectors
    from s3_route_agent.engine.model import Target
    from s3_route_agent.engine.observed import DiscoveredTarget


def planned_targets(config: AgentConfig, region: str, traffic: TrafficCollectors | None,
                    ) -> tuple[tuple[Target, ...], tuple[DiscoveredTarget, ...]]:
    """The targets a run checks: the configured ones, else the defaults plus (bounded) the names
    the host's software was seen resolving or using; and those discovered names' evidence."""
    targets: tuple[Target, ...] = targets_for(config, region)
    if traffic is None:     # the observation's modules load only when observing
        return targets, ()
    from s3_route_agent.runs.observe import discovered_for
    discovered = discovered_for(config, traffic, targets)
    return targets + tuple(d.target for d in discovered), discovered


def check_targets(config: AgentConfig, region: str,
                  traffic: TrafficCollectors | None) -> tuple[Target, ...]:
    """The targets ``check`` would use (what ``validate-config`` prints)."""
    return planned_targets(config, region, traffic if config.observe.enabled else None)[0]
