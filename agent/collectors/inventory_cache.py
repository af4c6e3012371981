"""A small on-disk cache of the EC2 inventory, one JSON file per region/VPC/subnet.

Every host of an account shares each Describe API's request budget (EC2 API reference, "Request
throttling for the Amazon EC2 API"), so a run inside the TTL with the same private addresses
makes no EC2 call at all. The file is written atomically (temporary file + ``os.replace``) with
mode 0600 in a 0700 directory, with a SHA-256 over its content. Loading checks the checksum and
parses every CIDR and address; a corrupt file is set aside (renamed ``.corrupt-UNIXTIME``, logged
once) and the inventory fetched again, never raised and never trusted.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from s3_route_agent.collectors.inventory import inventory_from_dict, inventory_to_dict
from s3_route_agent.engine.model import Inventory
from s3_route_agent.statefile import (StateFileError, check_checksum, read_state_json, replace_json, set_aside,
                                      with_checksum)

logger = logging.getLogger(__name__)

# 2: a SHA-256 over the content (``sha256``); format 1 files are refetched once.
CACHE_FORMAT = 2
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class CachedInventory:
    """An inventory read from the cache, how old it is and which addresses were looked up."""

    inventory: Inventory
    age_seconds: float
    fresh: bool
    looked_up_addresses: tuple[str, ...] = ()
    # When the route table was last seen unchanged by a route check (epoch seconds; the fetch
    # time until the first check).
    routes_checked_at: float = 0.0

    def routes_due(self, every_seconds: float, now: float) -> bool:
        """True when a route check is due: ``every_seconds`` (0: never) since the last one."""
        return every_seconds > 0 and not 0.0 <= now - self.routes_checked_at < every_seconds

    def covers(self, addresses: Iterable[str],
               security_group_ids: Iterable[str] | None = None) -> bool:
        """True when a refresh would look up none of ``addresses`` and learn nothing new about
        this host's security groups.

        The collector looks up an IPv4 address unless an S3 endpoint ENI of the VPC holds it;
        IPv6 addresses are never looked up, so they are always covered. An inventory without
        traffic filters (written before they were collected) never covers; nor does one made
        for other security groups than ``security_group_ids`` (IMDS's, when it gave them).
        """
        filters = self.inventory.traffic_filters
        if filters is None:
            return False
        groups = tuple(security_group_ids or ())
        if groups and tuple(filters.host_security_group_ids or ()) != groups:
            return False
        known = set(self.looked_up_addresses)
        known.update(_canonical(a) for i in self.inventory.interfaces for a in i.addresses)
        for address in addresses:
            text = _canonical(address)
            if _is_ipv4(text) and text not in known:
                return False
        return True


class InventoryCache:
    """The cached inventory of one region/VPC/subnet under ``state_dir``."""

    def __init__(self, state_dir: Path, region: str, vpc_id: str, subnet_id: str,
                 ttl_seconds: float = 900.0, clock: Callable[[], float] = time.time,
                 ttl_jitter_fraction: float = 0.0,
                 rng: Callable[[float, float], float] = random.uniform) -> None:
        """Cache for this identity; nothing is read or written until load/store.

        ``ttl_jitter_fraction`` shortens each stored inventory's life by a random part of up to
        that fraction of the TTL, so hosts restarted together do not refresh together (every
        host of the account draws on the same Describe request budget).
        """
        self.state_dir = Path(state_dir)
        self.region = region
        self.vpc_id = vpc_id
        self.subnet_id = subnet_id
        self.ttl_seconds = float(ttl_seconds)
        self.clock = clock
        self.ttl_jitter_fraction = float(ttl_jitter_fraction)
        self.rng = rng

    @property
    def path(self) -> Path:
        """The cache file: ``inventory-{region}-{vpc}-{subnet}.json``."""
        name = f"inventory-{self.region}-{self.vpc_id}-{self.subnet_id}.json"
        return self.state_dir / _SAFE.sub("_", name)

    def load(self) -> CachedInventory | None:
        """The cached inventory with its age, or None (missing, unreadable, corrupt, other key).

        A file that is not what :meth:`store` wrote (not UTF-8 JSON, a checksum that does not
        match its content, a CIDR or address that does not parse) is set aside
        (``.corrupt-UNIXTIME``) so the next refresh rebuilds it: cached facts are trusted only
        when they are intact, since a flipped bit in a route could otherwise turn a verdict.
        """
        path = self.path
        try:
            document = read_state_json(path)
            if document is None:
                return None
            if not isinstance(document, dict):
                raise StateFileError("not a JSON object")
            if document.get("format") != CACHE_FORMAT:
                # Another version's file: not damaged, simply replaced by the next store.
                logger.info("ignoring inventory cache %s of format %r", path,
                            document.get("format"))
                return None
            check_checksum(document)
            inventory = inventory_from_dict(document["inventory"],
                                            document.get("policy_documents") or {})
            problem = inventory_problem(inventory)
            if problem:
                raise StateFileError(problem)
            looked_up = tuple(str(a) for a in document.get("looked_up_addresses") or ())
            lifetime = float(document.get("lifetime_seconds", self.ttl_seconds))
            routes_checked_at = float(document.get("routes_checked_at", inventory.fetched_at))
        except OSError as exc:
            logger.warning("ignoring inventory cache %s: %s", path, exc.strerror or exc)
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            set_aside(path, f"{type(exc).__name__}: {exc}", self.clock)
            return None
        if (inventory.region, inventory.vpc_id, inventory.subnet_id) != (
                self.region, self.vpc_id, self.subnet_id):
            logger.warning("ignoring inventory cache %s: it is for %s/%s/%s", path,
                           inventory.region, inventory.vpc_id, inventory.subnet_id)
            return None
        age = self.clock() - inventory.fetched_at
        # A negative age means the clock went back (or the file came from elsewhere): the facts'
        # age is unknown, so they are not fresh.
        fresh = 0.0 <= age < min(lifetime, self.ttl_seconds)
        return CachedInventory(inventory=inventory, age_seconds=max(age, 0.0), fresh=fresh,
                               looked_up_addresses=looked_up, routes_checked_at=routes_checked_at)

    def mark_routes_checked(self, at: float | None = None) -> bool:
        """Record that a route check found the cached route table unchanged (``at``, default
        now); False when the cache cannot be read or written (logged)."""
        try:
            document = check_checksum(read_state_json(self.path))
            document["routes_checked_at"] = self.clock() if at is None else at
            replace_json(self.path, with_checksum(document), durable=False)
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("cannot record the route check in %s: %s", self.path, exc)
            return False
        return True

    def covers(self, addresses: Iterable[str],
               security_group_ids: Iterable[str] | None = None) -> bool:
        """True when the cached inventory already answers for every one of ``addresses``."""
        cached = self.load()
        return cached is not None and cached.covers(addresses, security_group_ids)

    def invalidate(self) -> None:
        """Forget the cached inventory: the next run fetches it again (evidence contradicted it)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("cannot remove inventory cache %s: %s", self.path, exc.strerror or exc)

    def store(self, inventory: Inventory, looked_up_addresses: Iterable[str] = ()) -> bool:
        """Write ``inventory`` and the addresses its collection looked up; False on failure.

        A failed write is logged, not raised: the cache only saves API calls.
        """
        if (inventory.region, inventory.vpc_id, inventory.subnet_id) != (
                self.region, self.vpc_id, self.subnet_id):
            raise ValueError(f"inventory of {inventory.region}/{inventory.vpc_id}/"
                             f"{inventory.subnet_id} does not belong in {self.path.name}")
        document: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "inventory": inventory_to_dict(inventory),
            # VpcEndpoint.to_dict leaves the policy out; keep it so a cached inventory equals
            # the fetched one.
            "policy_documents": {e.id: e.policy_document
                                 for e in inventory.endpoints + inventory.remote_endpoints
                                 if e.policy_document is not None},
            "looked_up_addresses": sorted({_canonical(a) for a in looked_up_addresses}),
            "lifetime_seconds": self.ttl_seconds * (
                1.0 - self.rng(0.0, self.ttl_jitter_fraction)),
        }
        try:
            self._ensure_dir()
            # A cache: a write lost to a crash is fetched again (no fsync).
            replace_json(self.path, with_checksum(document), durable=False)
        except OSError as exc:
            logger.warning("cannot write inventory cache %s: %s", self.path,
                           exc.strerror or exc)
            return False
        logger.debug("stored inventory cache %s", self.path)
        return True

    def _ensure_dir(self) -> None:
        """Create the state directory with mode 0700 when it does not exist."""
        if not self.state_dir.is_dir():
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.state_dir, 0o700)  # mkdir's mode is masked by the umask


def _canonical(address: str) -> str:
    """Canonical text of an IP address, or the stripped input when it is not one."""
    text = str(address).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _is_ipv4(text: str) -> bool:
    """True for an IPv4 address."""
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def inventory_problem(inventory: Inventory) -> str | None:
    """What in ``inventory`` does not parse (a route destination, prefix-list CIDR, interface,
    NAT, security-group, network-ACL or host address), or None when every one does."""
    def bad_network(text: str | None) -> bool:
        if text is None:
            return False
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            return True
        return False

    def bad_address(text: str) -> bool:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return True
        return False

    checks: list[tuple[str, str, bool]] = []
    if inventory.route_table is not None:
        checks += [("route destination", r.destination, bad_network(r.destination))
                   for r in inventory.route_table.routes if not r.is_prefix_list]
    checks += [(f"prefix list {p.id} CIDR", c, bad_network(c))
               for p in inventory.prefix_lists for c in p.cidrs]
    checks += [(f"interface {i.id} address", a, bad_address(a))
               for i in inventory.interfaces for a in i.addresses]
    checks += [(f"NAT gateway {n.id} address", a, bad_address(a))
               for n in inventory.nat_gateways for a in n.private_addresses + n.public_addresses]
    filters = inventory.traffic_filters
    if filters is not None:
        checks += [(f"security group {r.group_id} rule CIDR", r.cidr or "", bad_network(r.cidr))
                   for r in filters.security_group_rules]
        checks += [(f"network ACL {a.id} entry CIDR", e.cidr, bad_network(e.cidr))
                   for a in filters.network_acls for e in a.entries]
        checks += [("host address", a, bad_address(a)) for a in filters.host_addresses]
    bad = next(((what, text) for what, text, failed in checks if failed), None)
    return f"{bad[0]} {bad[1]!r} does not parse" if bad else None
