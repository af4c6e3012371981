"""The agent stays off the real instance metadata service where the SDKs' switch says there is
none, and the tests' own guard fails any connection to it."""

from __future__ import annotations

import socket

import pytest

from s3_route_agent.config import AgentConfig, parse_config
from s3_route_agent.wiring import build_imds_client, region_for


def test_metadata_disabled_without_an_endpoint_builds_no_imds_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert build_imds_client(AgentConfig()) is None
    # The region lookup goes straight to the environment: no IMDS request at all.
    assert region_for(AgentConfig()) == ("eu-west-1", "environment")


@pytest.mark.parametrize("how", ["config", "environment"])
def test_an_explicit_endpoint_is_still_asked(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if how == "config":
        config = parse_config("imds:\n  endpoint: http://127.0.0.1:1\n")
    else:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
        config = AgentConfig()
    client = build_imds_client(config)
    assert client is not None and "127.0.0.1:1" in client.base_url


def test_metadata_not_disabled_uses_the_default_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    monkeypatch.delenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", raising=False)
    config = AgentConfig()
    assert not config.imds_disabled_by_environment()
    assert config.imds_endpoint() == "http://169.254.169.254"


@pytest.mark.parametrize("address", [("169.254.169.254", 80), ("fd00:ec2::254", 80, 0, 0)])
def test_the_suite_refuses_a_connection_to_instance_metadata(address: tuple) -> None:
    family = socket.AF_INET if len(address) == 2 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        with pytest.raises(AssertionError, match="off limits"):
            sock.connect(address)
        with pytest.raises(AssertionError, match="off limits"):
            sock.connect_ex(address)
