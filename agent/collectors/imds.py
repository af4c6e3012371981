"""Identity from the instance metadata service, IMDSv2 only (token first, then GETs).

EC2 user guide, "Use the Instance Metadata Service to access instance metadata": PUT
/latest/api/token with X-aws-ec2-metadata-token-ttl-seconds, then GET with
X-aws-ec2-metadata-token. A 401 means the token is missing or expired; a 403 on the PUT means
IMDS is disabled for the instance. The default hop limit of 1 stops answers from reaching
containers (they need 2): such a host sees timeouts, which we report as unreachable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from s3_route_agent.errors import IdentityError
from s3_route_agent.engine.model import Identity

if TYPE_CHECKING:
    import urllib.request

logger = logging.getLogger(__name__)

_TOKEN_PATH = "/latest/api/token"
_META = "/latest/meta-data/"


@dataclass(frozen=True)
class ImdsClient:
    """A tiny IMDSv2 client: base URL, per-request timeout and attempts are the caller's."""

    base_url: str
    timeout_seconds: float = 1.0
    attempts: int = 2
    token_ttl_seconds: int = 21600
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # What the client remembers between runs of one process (the daemon): the session token
    # until shortly before it expires, and the facts IMDS cannot change for this instance.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _open(self, request: urllib.request.Request) -> str:
        import urllib.request  # here, not at import: about 25 ms a run that never asks IMDS saves
        # IMDS is link-local: never send it through an HTTP proxy from the environment. One
        # opener per client (building one costs more than a request to IMDS).
        opener = self.memo.get("opener")
        if opener is None:
            opener = self.memo["opener"] = urllib.request.build_opener(
                urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=self.timeout_seconds) as response:
            return response.read().decode("utf-8").strip()

    def _with_attempts(self, what: str, call: Callable[[], str]) -> str:
        import urllib.error
        last: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403, 404, 400):
                    raise
                last = exc
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                last = exc
            if attempt < self.attempts:
                self.sleep(min(0.2 * attempt, 1.0))
        reason = getattr(last, "reason", None) or last
        raise IdentityError("imds_unreachable",
                            f"IMDS at {self.base_url} unreachable for {what} after "
                            f"{self.attempts} attempt(s): {reason}")

    def token(self) -> str:
        """A session token (PUT /latest/api/token)."""
        import urllib.error
        import urllib.request
        request = urllib.request.Request(
            self.base_url + _TOKEN_PATH, method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(self.token_ttl_seconds)})
        try:
            return self._with_attempts("a token", lambda: self._open(request))
        except urllib.error.HTTPError as exc:
            if exc.code == 403:
                raise IdentityError("imds_disabled", f"IMDS at {self.base_url} refused a token "
                                    "(403): instance metadata is disabled for this instance") from None
            raise IdentityError("imds_error", f"IMDS at {self.base_url} answered {exc.code} to the "
                                "token request") from None

    def session_token(self) -> str:
        """The session token: the remembered one while it has more than a tenth of its
        lifetime (at least a minute) left, else a new one (:meth:`token`)."""
        kept = self.memo.get("token")
        if kept is not None and self.clock() < kept[1]:
            return str(kept[0])
        token = self.token()
        margin = max(60.0, self.token_ttl_seconds / 10)
        self.memo["token"] = (token, self.clock() + max(0.0, self.token_ttl_seconds - margin))
        return token

    def forget_token(self) -> None:
        """Drop the remembered token (IMDS rejected it: 401)."""
        self.memo.pop("token", None)

    def get(self, token: str, path: str) -> str | None:
        """One metadata value, or None when IMDS has no such item (404)."""
        import urllib.error
        import urllib.request
        request = urllib.request.Request(self.base_url + _META + path,
                                         headers={"X-aws-ec2-metadata-token": token})
        try:
            return self._with_attempts(path, lambda: self._open(request))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code == 401:
                raise IdentityError("imds_token_rejected", f"IMDS at {self.base_url} rejected the "
                                    f"session token (401) for {path}") from None
            raise IdentityError("imds_error", f"IMDS at {self.base_url} answered {exc.code} "
                                f"for {path}") from None


def identity_from_imds(client: ImdsClient) -> Identity:
    """Region, AZ, instance, and the primary interface's subnet, VPC and addresses.

    A client asked before (the daemon's, each cycle) reuses its session token and, while the
    primary interface's MAC is the same, the facts that cannot change for a running instance:
    region, AZ and instance id, and the primary interface's id, subnet and VPC (a primary
    network interface cannot be detached or moved; EC2 user guide, "Elastic network
    interfaces"). Its addresses and security groups can change, so they are read every time:
    4 requests instead of 11. A rejected token (401) is replaced once.
    """
    try:
        return _identity_from_imds(client, client.session_token())
    except IdentityError as exc:
        if exc.kind != "imds_token_rejected" or "token" not in client.memo:
            raise
        client.forget_token()
        return _identity_from_imds(client, client.session_token())


def _identity_from_imds(client: ImdsClient, token: str) -> Identity:
    mac = client.get(token, "mac")
    fixed = client.memo.get("fixed")
    if not mac or fixed is None or fixed["mac"] != mac:
        region = client.get(token, "placement/region")
        if not region or not mac:
            raise IdentityError("imds_incomplete", f"IMDS at {client.base_url} gave no "
                                f"{'region' if not region else 'MAC address'}")
        base = f"network/interfaces/macs/{mac}/"
        subnet_id = client.get(token, base + "subnet-id")
        vpc_id = client.get(token, base + "vpc-id")
        if not subnet_id or not vpc_id:
            raise IdentityError("imds_incomplete", f"IMDS at {client.base_url} gave no subnet "
                                f"or VPC for interface {mac}")
        fixed = {"mac": mac, "region": region, "subnet_id": subnet_id, "vpc_id": vpc_id,
                 "instance_id": client.get(token, "instance-id"),
                 "availability_zone": client.get(token, "placement/availability-zone"),
                 "interface_id": client.get(token, base + "interface-id")}
    base = f"network/interfaces/macs/{mac}/"
    local_ipv4s = client.get(token, base + "local-ipv4s") or ""
    ipv6s = client.get(token, base + "ipv6s") or ""
    # The interface's security groups, one id per line (EC2 user guide, "Instance metadata
    # categories": network/interfaces/macs/mac/security-group-ids).
    groups = client.get(token, base + "security-group-ids") or ""
    client.memo["fixed"] = fixed
    return Identity(
        region=fixed["region"], vpc_id=fixed["vpc_id"], subnet_id=fixed["subnet_id"],
        instance_id=fixed["instance_id"], availability_zone=fixed["availability_zone"],
        mac=mac, interface_id=fixed["interface_id"],
        local_ipv4s=tuple(local_ipv4s.split()), ipv6s=tuple(ipv6s.split()), source="imds",
        security_group_ids=tuple(groups.split()))


def resolve_identity(client: ImdsClient | None, region: str | None, vpc_id: str | None,
                     subnet_id: str | None, instance_id: str | None = None,
                     environ_region: str | None = None) -> Identity:
    """Identity from IMDS overlaid with config overrides; IMDS is skipped when config gives
    region, VPC and subnet (hosts that are not EC2, tests).

    The region comes from config, then IMDS, then ``environ_region`` (AWS_REGION /
    AWS_DEFAULT_REGION, which the caller reads): the environment is used only when IMDS is
    disabled or unreachable and config gives the VPC and subnet. ``client`` None means IMDS is
    disabled; then VPC and subnet must come from config.
    """
    if region and vpc_id and subnet_id:
        return Identity(region=region, vpc_id=vpc_id, subnet_id=subnet_id,
                        instance_id=instance_id, source="config", region_source="config")

    def without_imds(why: str, error: IdentityError | None = None) -> Identity:
        chosen = region or environ_region
        if chosen and vpc_id and subnet_id:
            return Identity(region=chosen, vpc_id=vpc_id, subnet_id=subnet_id,
                            instance_id=instance_id, source="config",
                            region_source="config" if region else "environment")
        if error is not None:
            raise error
        missing = [k for k, v in (("aws.region (or AWS_REGION)", chosen),
                                  ("identity.vpc_id", vpc_id),
                                  ("identity.subnet_id", subnet_id)) if not v]
        raise IdentityError("identity_incomplete", f"{why} and config lacks "
                            + ", ".join(missing))

    if client is None:
        return without_imds("IMDS is disabled")
    try:
        found = identity_from_imds(client)
    except IdentityError as exc:
        return without_imds("IMDS is unreachable", exc)
    overridden = any((region, vpc_id, subnet_id, instance_id))
    return Identity(
        region=region or found.region, vpc_id=vpc_id or found.vpc_id,
        subnet_id=subnet_id or found.subnet_id, instance_id=instance_id or found.instance_id,
        availability_zone=found.availability_zone, mac=found.mac,
        interface_id=found.interface_id, local_ipv4s=found.local_ipv4s, ipv6s=found.ipv6s,
        region_source="config" if region else "imds",
        source="imds+config" if overridden else "imds",
        # IMDS's groups belong to its interface, in its subnet: not to a configured other one.
        security_group_ids=(found.security_group_ids
                            if (subnet_id or found.subnet_id) == found.subnet_id else ()))
