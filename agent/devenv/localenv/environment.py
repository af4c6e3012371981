"""The built-in local environment: moto (EC2, S3), a DNS server and an IMDSv2 emulator, all real
servers on 127.0.0.1, seeded with the local world. The tests and ``s3-route-agent demo`` share it.

Nothing is ever sent to the addresses the DNS server hands out here (documentation and lab
ranges); the agent only reasons about them. Live traffic to them happens only inside the lab's
network namespaces.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from s3_route_agent.devenv.localenv import world
from s3_route_agent.devenv.localenv.dns_server import DnsZone, LocalDnsServer
from s3_route_agent.devenv.localenv.imds_server import InstanceMetadata, LocalImdsServer

logger = logging.getLogger(__name__)

DEMO_BUCKET = "demo-bucket"

# Addresses S3 names resolve to in the local world (see agent/localenv/world.py for the ranges).
REGIONAL_S3_IP = "198.51.100.10"
REGIONAL_BUCKET_IP = "198.51.100.11"
GLOBAL_S3_IP = "203.0.113.10"
GLOBAL_BUCKET_IP = "203.0.113.11"
DUALSTACK_IPV6 = "2001:db8:e1::12"

# Environment for anything that talks to the local environment: fake credentials, and botocore's
# credential chain kept away from the real instance metadata service.
SAFE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": world.REGION,
}
_UNSET = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2",
          "AWS_ENDPOINT_URL_S3", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
          "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_CA_BUNDLE")


def safe_environ(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default os.environ) with fake credentials and no real AWS reach."""
    env = dict(os.environ if base is None else base)
    for key in _UNSET:
        env.pop(key, None)
    env.update(SAFE_ENVIRONMENT)
    env.setdefault("AWS_CONFIG_FILE", os.devnull)
    env.setdefault("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return env


def dns_zone_for(ids: world.WorldIds) -> DnsZone:
    """The S3 names of the local world, answered the way Route 53 Resolver in the VPC would.

    With interface-endpoint private DNS (for all resolvers), the regional names resolve to the
    endpoint ENI (PrivateLink guide, "AWS PrivateLink for Amazon S3": private DNS); otherwise to
    public S3 addresses. The legacy global names resolve to us-east-1 with a CNAME as they do.
    """
    zone = DnsZone()
    regional = f"s3.{ids.region}.amazonaws.com"
    if ids.private_dns:
        zone.add_a(regional, ids.interface_endpoint_ip)
        zone.add_a(f"*.{regional}", ids.interface_endpoint_ip)
    else:
        zone.add_a(regional, REGIONAL_S3_IP)
        zone.add_a(f"*.{regional}", REGIONAL_BUCKET_IP)
    zone.add_a("s3.amazonaws.com", GLOBAL_S3_IP)
    zone.add_cname("*.s3.amazonaws.com", "s3-1-w.amazonaws.com")
    zone.add_a("s3-1-w.amazonaws.com", GLOBAL_BUCKET_IP)
    zone.add_a(f"s3.dualstack.{ids.region}.amazonaws.com", REGIONAL_S3_IP)
    zone.add_aaaa(f"s3.dualstack.{ids.region}.amazonaws.com", DUALSTACK_IPV6)
    for name in ids.interface_endpoint_dns_names:
        zone.add_a(name, ids.interface_endpoint_ip)
    return zone


def instance_metadata_for(ids: world.WorldIds) -> InstanceMetadata:
    """What IMDS says on the world's agent instance."""
    return InstanceMetadata(region=ids.region, availability_zone=ids.availability_zone,
                            instance_id=ids.instance_id, mac=ids.instance_mac,
                            subnet_id=ids.app_subnet_id, vpc_id=ids.vpc_id,
                            interface_id=ids.instance_eni_id, local_ipv4s=(ids.instance_ip,),
                            security_group_ids=(ids.default_security_group_id,))


def interface_host(ids: world.WorldIds, bucket: str = DEMO_BUCKET) -> str:
    """The bucket's name on the interface endpoint (``bucket.vpce-….s3.REGION.vpce…``)."""
    regional = ids.interface_endpoint_dns_names[0].removeprefix("*.")
    return f"{bucket}.bucket.{regional}"


def demo_targets(ids: world.WorldIds) -> list[dict[str, Any]]:
    """The targets the demo checks: each path the local world offers."""
    return [
        {"name": "regional", "host": "s3.{region}.amazonaws.com", "expect": "private"},
        {"name": "bucket-regional", "host": "{bucket}.s3.{region}.amazonaws.com",
         "expect": "gateway", "bucket": DEMO_BUCKET},
        {"name": "interface", "host": interface_host(ids), "expect": "interface",
         "bucket": DEMO_BUCKET},
        {"name": "legacy-global", "host": "s3.amazonaws.com", "expect": "private"},
        {"name": "bucket-global", "host": "{bucket}.s3.amazonaws.com", "expect": "private",
         "bucket": DEMO_BUCKET},
    ]


@dataclass
class LocalEnvironment:
    """Everything the agent talks to, on 127.0.0.1, plus a config that points at it."""

    private_dns: bool = False
    state_dir: Path | None = None

    def start(self) -> "LocalEnvironment":
        """Start moto, seed the world, start DNS and IMDS. Idempotent callers use ``with``."""
        self.moto = world.start_moto_server()
        try:
            self.ids = world.seed_world(self.moto.endpoint_url, private_dns=self.private_dns)
            world.ensure_bucket(self.moto.endpoint_url, DEMO_BUCKET)
            self.zone = dns_zone_for(self.ids)
            self.dns = LocalDnsServer(self.zone).start()
            self.imds = LocalImdsServer(instance_metadata_for(self.ids)).start()
        except BaseException:
            self.moto.stop()
            raise
        if self.state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="s3-route-agent-local-")
            self.state_dir = Path(self._tmp.name)
        return self

    def stop(self) -> None:
        """Stop every server and remove the temporary state."""
        for server in ("imds", "dns", "moto"):
            if hasattr(self, server):
                getattr(self, server).stop()
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "LocalEnvironment":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def config(self, targets: list[dict[str, Any]] | None = None, **sections: Any) -> dict[str, Any]:
        """A config (as a dict) for this environment; ``sections`` replace top-level keys."""
        config: dict[str, Any] = {
            "aws": {"endpoint_url": self.moto.endpoint_url, "max_attempts": 2,
                    "connect_timeout_seconds": 2, "read_timeout_seconds": 5},
            "imds": {"endpoint": self.imds.url, "timeout_seconds": 1, "attempts": 2},
            "dns": {"nameservers": ["127.0.0.1"], "port": self.dns.port, "timeout_seconds": 1},
            "s3_ranges": {"file": str(world.IP_RANGES_PATH)},
            "buckets": [DEMO_BUCKET],
            "targets": demo_targets(self.ids) if targets is None else targets,
            "state_dir": str(self.state_dir),
            # The local world's S3 ranges are documentation stand-ins (RFC 5737) that this
            # machine's own connections may really use (a package proxy, another engineer's
            # lab): observing the machine's sockets against them would judge traffic that is
            # not the world's. Tests of observation enable it inside their own namespaces.
            "observe": {"enabled": False},
        }
        config.update(sections)
        return config

    def write_config(self, path: Path, targets: list[dict[str, Any]] | None = None,
                     **sections: Any) -> Path:
        """Write :meth:`config` as YAML to ``path`` and return it."""
        path.write_text(yaml.safe_dump(self.config(targets, **sections), sort_keys=False))
        return path
