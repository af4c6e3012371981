"""Shared fixtures. Every test runs with fake AWS credentials and no instance-metadata lookups;
the moto server and the seeded world are started once per session on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import itertools
import logging
import socket
from typing import Any, Callable, Iterator

import pytest

from s3_route_agent.aws import make_ec2_client
from s3_route_agent.devenv.localenv import world as local_world
from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from s3_route_agent.devenv.localenv.world import HubIds, MotoServer, WorldIds

# ---------------------------------------------------------------------------------------------
# AWS: fake credentials, local moto server, the seeded world (s3_route_agent.devenv.localenv.world)

# Variables that would send a client elsewhere or hand it other credentials.
_AWS_ENV_UNSET = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                  "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_S3",
                  "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                  "AWS_EC2_METADATA_SERVICE_ENDPOINT", "MOTO_ACCOUNT_ID")


@pytest.fixture(autouse=True)
def aws_fake_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake credentials, region eu-west-1, no IMDS and no shared config files, for every test."""
    home = tmp_path_factory.mktemp("aws-env")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-such-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-such-credentials"))
    monkeypatch.setenv("BOTO_CONFIG", str(home / "no-such-boto-config"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in _AWS_ENV_UNSET:
        monkeypatch.delenv(name, raising=False)


# IMDS: 169.254.169.254, and fd00:ec2::254 on Nitro instances with IPv6.
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fd00:ec2::/32"))


def _refuse_instance_metadata(address: Any) -> None:
    """Raise for a connection to the real instance-metadata service (link-local): a test that
    forgot an emulator endpoint must fail here, never reach 169.254.169.254 from this machine."""
    if not isinstance(address, tuple) or not address:
        return
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
    except ValueError:
        return
    if any(ip in net for net in _LINK_LOCAL):
        raise AssertionError(f"test tried to connect to {ip}: the real instance metadata service "
                             "is off limits (set an emulator endpoint)")


@pytest.fixture(autouse=True)
def no_instance_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process guard: every socket connect to a link-local address fails the test (the lab's
    169.254.169.254 lives in a lab namespace, reached only by processes started there)."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _refuse_instance_metadata(address)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _refuse_instance_metadata(address)
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """cli.main() configures process-wide logging (a redacting root handler, quiet botocore):
    tests that call it in-process must leave logging as they found it."""
    root = logging.getLogger()
    names = ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug")
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture(scope="module")
def local_env() -> Iterator[LocalEnvironment]:
    """The local environment (moto, DNS, IMDS on 127.0.0.1) with the safe environment applied,
    for tests that run the agent in-process."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in safe_environ().items():
            patch.setenv(name, value)
        with LocalEnvironment() as env:
            yield env


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A moto server on 127.0.0.1 (in this process, so moto_patches can reach its state)."""
    server = local_world.start_moto_server()
    yield server
    server.stop()


# The shared world lives in its own moto account: every ThreadedMotoServer of the process
# shares moto's state, and worlds other code seeds into the default account (the CLI's local
# environment, for one) repeat the same addresses.
SHARED_WORLD_ACCOUNT = "200000000000"
_ACCOUNTS = itertools.count(1)


@pytest.fixture(scope="session")
def world(moto_server: MotoServer) -> WorldIds:
    """The shared world, in moto account SHARED_WORLD_ACCOUNT. Read-only: tests that change it
    use ``isolated_world`` instead. Reach it with ``ec2_client`` or ``ec2_for(world)``."""
    return local_world.seed_world(moto_server.endpoint_url, account_id=SHARED_WORLD_ACCOUNT)


@pytest.fixture(scope="session")
def hub(moto_server: MotoServer, world: WorldIds) -> HubIds:
    """A hub VPC in the shared world's account with S3 (10.1.2.60) and EC2 interface
    endpoints; the shared world's routes are not changed."""
    return local_world.seed_hub_vpc(moto_server.endpoint_url, account_id=world.account_id)


@pytest.fixture
def isolated_world(moto_server: MotoServer) -> Callable[..., WorldIds]:
    """Factory: seed a fresh world in a new moto account (``isolated_world(private_dns=True)``);
    reach it with ``ec2_for(ids)``."""
    def _seed(private_dns: bool = False) -> WorldIds:
        account = f"{200000000000 + next(_ACCOUNTS)}"
        return local_world.seed_world(moto_server.endpoint_url, private_dns=private_dns,
                                      account_id=account)
    return _seed


@pytest.fixture
def ec2_for(moto_server: MotoServer) -> Callable[..., Any]:
    """Factory: the agent's EC2 client (make_ec2_client) pointed at a world's moto account
    (``ec2_for(ids)``, or ``ec2_for(ids, "us-east-1")`` for another region)."""
    def _client(ids: WorldIds, region: str | None = None) -> Any:
        client = make_ec2_client(region or ids.region, moto_server.endpoint_url)
        return local_world.use_moto_account(client, ids.account_id)
    return _client


@pytest.fixture
def ec2_client(world: WorldIds, ec2_for: Callable[..., Any]) -> Any:
    """The agent's EC2 client for eu-west-1, pointed at the shared world's moto account."""
    return ec2_for(world)
