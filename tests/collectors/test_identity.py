"""Identity from the IMDSv2 emulator over HTTP, with config overrides and every failure."""

from __future__ import annotations

import socket

import pytest

from s3_route_agent.collectors.imds import ImdsClient, resolve_identity
from s3_route_agent.errors import IdentityError
from s3_route_agent.devenv.localenv.imds_server import InstanceMetadata, LocalImdsServer

META = InstanceMetadata(region="eu-west-1", availability_zone="eu-west-1a",
                        instance_id="i-0123456789abcdef0", mac="02:00:00:00:00:01",
                        subnet_id="subnet-aaa", vpc_id="vpc-bbb", interface_id="eni-ccc",
                        local_ipv4s=("10.0.1.10", "10.0.1.11"), ipv6s=("2001:db8::10",))


def client(url: str, **kw) -> ImdsClient:
    return ImdsClient(url, timeout_seconds=kw.pop("timeout", 0.5), attempts=kw.pop("attempts", 2),
                      sleep=lambda _: None, **kw)


def test_identity_from_imds_uses_a_token_first():
    with LocalImdsServer(META) as imds:
        ident = resolve_identity(client(imds.url), None, None, None)
        first = imds.requests[0]
    assert (first.method, first.path) == ("PUT", "/latest/api/token")
    assert (ident.region, ident.vpc_id, ident.subnet_id) == ("eu-west-1", "vpc-bbb", "subnet-aaa")
    assert ident.instance_id == "i-0123456789abcdef0" and ident.interface_id == "eni-ccc"
    assert ident.local_ipv4s == ("10.0.1.10", "10.0.1.11") and ident.ipv6s == ("2001:db8::10",)
    assert ident.availability_zone == "eu-west-1a" and ident.source == "imds"


def test_security_group_ids_of_the_interface_from_imds():
    meta = InstanceMetadata(**{**META.__dict__, "security_group_ids": ("sg-aaa", "sg-bbb")})
    with LocalImdsServer(meta) as imds:
        ident = resolve_identity(client(imds.url), None, None, None)
        paths = [r.path for r in imds.requests]
    assert ident.security_group_ids == ("sg-aaa", "sg-bbb")
    assert "/latest/meta-data/network/interfaces/macs/02:00:00:00:00:01/security-group-ids" in paths
    with LocalImdsServer(META) as imds:          # an instance without the item: none known
        assert resolve_identity(client(imds.url), None, None, None).security_group_ids == ()
    with LocalImdsServer(meta) as imds:          # another subnet configured: not its groups
        assert resolve_identity(client(imds.url), None, None,
                                "subnet-other").security_group_ids == ()


def test_config_overrides_win_and_are_marked():
    with LocalImdsServer(META) as imds:
        ident = resolve_identity(client(imds.url), None, "vpc-override", None)
    assert ident.vpc_id == "vpc-override" and ident.subnet_id == "subnet-aaa"
    assert ident.source == "imds+config"


def test_full_config_identity_skips_imds():
    with LocalImdsServer(META) as imds:
        ident = resolve_identity(client(imds.url), "us-west-2", "vpc-1", "subnet-1")
        assert imds.requests == []
    assert ident.source == "config" and ident.region == "us-west-2"


def test_imds_disabled_needs_full_config():
    with pytest.raises(IdentityError) as info:
        resolve_identity(None, "eu-west-1", None, "subnet-1")
    assert info.value.kind == "identity_incomplete"
    assert "identity.vpc_id" in info.value.message


def test_token_refused_means_imds_disabled():
    with LocalImdsServer(META, token_status=403) as imds:
        with pytest.raises(IdentityError) as info:
            resolve_identity(client(imds.url), None, None, None)
    assert info.value.kind == "imds_disabled" and "403" in info.value.message


def test_slow_imds_times_out_after_the_configured_attempts():
    with LocalImdsServer(META, delay_seconds=2.0) as imds:
        with pytest.raises(IdentityError) as info:
            resolve_identity(client(imds.url, timeout=0.2, attempts=2), None, None, None)
        puts = [r for r in imds.requests if r.method == "PUT"]
    assert info.value.kind == "imds_unreachable" and "2 attempt(s)" in info.value.message
    assert len(puts) == 2


def test_closed_port_is_unreachable_in_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(IdentityError) as info:
        resolve_identity(client(f"http://127.0.0.1:{port}", attempts=1), None, None, None)
    assert info.value.kind == "imds_unreachable" and "\n" not in info.value.message


def test_imds_ignores_proxy_environment(monkeypatch):
    # A proxy in the environment must never see the metadata request.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with LocalImdsServer(META) as imds:
        assert resolve_identity(client(imds.url), None, None, None).vpc_id == "vpc-bbb"


def test_a_kept_client_reuses_its_token_and_the_fixed_facts():
    """The daemon asks every cycle: the second identity costs no token PUT and 4 GETs (the MAC,
    then what can change: addresses and security groups), for the same identity."""
    meta = InstanceMetadata(**{**META.__dict__, "security_group_ids": ("sg-aaa",)})
    with LocalImdsServer(meta) as imds:
        kept = client(imds.url)
        first = resolve_identity(kept, None, None, None)
        asked = len(imds.requests)
        second = resolve_identity(kept, None, None, None)
        again = imds.requests[asked:]
    assert asked == 11
    assert [r.method for r in again] == ["GET"] * 4
    assert {r.path.rsplit("/", 1)[-1] for r in again} == {
        "mac", "local-ipv4s", "ipv6s", "security-group-ids"}
    assert second == first and second.security_group_ids == ("sg-aaa",)


def test_an_expired_kept_token_is_replaced_once():
    now = [0.0]
    with LocalImdsServer(META, clock=lambda: now[0]) as imds:
        kept = client(imds.url, token_ttl_seconds=120)
        resolve_identity(kept, None, None, None)
        kept.memo["token"] = (kept.memo["token"][0], float("inf"))  # the client thinks it valid
        now[0] = 1000.0                                              # IMDS says it expired
        ident = resolve_identity(kept, None, None, None)
        puts = [r for r in imds.requests if r.method == "PUT"]
    assert ident.subnet_id == "subnet-aaa" and len(puts) == 2
