"""IMDSv2 emulator, tested over real HTTP on 127.0.0.1 (http.client: no proxy is ever used)."""

from __future__ import annotations

import dataclasses
import http.client
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from s3_route_agent.devenv.localenv.imds_server import (
    MAX_TOKEN_TTL_SECONDS,
    TOKEN_HEADER,
    TOKEN_PATH,
    TOKEN_TTL_HEADER,
    ImdsRequest,
    InstanceMetadata,
    LocalImdsServer,
)

pytestmark = pytest.mark.timeout(20)

MAC = "0a:1b:2c:3d:4e:5f"
INTERFACE = f"/latest/meta-data/network/interfaces/macs/{MAC}/"
METADATA = InstanceMetadata(
    region="eu-west-1",
    availability_zone="eu-west-1b",
    instance_id="i-0123456789abcdef0",
    mac=MAC,
    subnet_id="subnet-0aaa1111bbbb2222c",
    vpc_id="vpc-0ddd3333eeee4444f",
    interface_id="eni-0fff5555aaaa6666b",
    local_ipv4s=("10.0.1.10", "10.0.1.11"),
    ipv6s=(),
)


class ManualClock:
    """A monotonic clock that tests move forward by hand."""

    def __init__(self) -> None:
        """Start at an arbitrary instant."""
        self.now = 1000.0

    def __call__(self) -> float:
        """The current reading."""
        return self.now


class HttpReply:
    """Status, headers and body of one HTTP exchange."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        """Read *response* completely."""
        self.status = response.status
        self.headers = response.headers
        self.body = response.read().decode()


def send(
    server: LocalImdsServer,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    timeout: float = 2.0,
) -> HttpReply:
    """Send one request straight to the emulator's loopback socket."""
    parts = urlsplit(server.url)
    assert parts.hostname == "127.0.0.1"
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, headers=headers or {})
        return HttpReply(connection.getresponse())
    finally:
        connection.close()


def get_token(server: LocalImdsServer, ttl_seconds: int = 60) -> str:
    """Obtain a session token the way an IMDSv2 client does."""
    reply = send(server, "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(ttl_seconds)})
    assert reply.status == 200
    return reply.body


@pytest.fixture()
def imds() -> Iterator[LocalImdsServer]:
    """An emulator requiring tokens, serving METADATA."""
    with LocalImdsServer(METADATA) as server:
        yield server


def test_token_flow_serves_region_with_a_valid_token(imds: LocalImdsServer) -> None:
    put = send(imds, "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: "21600"})
    get = send(imds, "GET", "/latest/meta-data/placement/region", {TOKEN_HEADER: put.body})

    assert put.status == 200
    assert len(put.body) >= 32
    assert put.headers[TOKEN_TTL_HEADER] == "21600"
    assert (get.status, get.body) == (200, "eu-west-1")


def test_tokens_are_random(imds: LocalImdsServer) -> None:
    assert get_token(imds) != get_token(imds)


@pytest.mark.parametrize(
    ("path", "expected_body"),
    [
        ("/latest/meta-data/placement/region", "eu-west-1"),
        ("/latest/meta-data/placement/availability-zone", "eu-west-1b"),
        ("/latest/meta-data/instance-id", "i-0123456789abcdef0"),
        ("/latest/meta-data/mac", MAC),
        (INTERFACE + "subnet-id", "subnet-0aaa1111bbbb2222c"),
        (INTERFACE + "vpc-id", "vpc-0ddd3333eeee4444f"),
        (INTERFACE + "interface-id", "eni-0fff5555aaaa6666b"),
        (INTERFACE + "local-ipv4s", "10.0.1.10\n10.0.1.11"),
    ],
)
def test_every_documented_path_is_served(
    imds: LocalImdsServer, path: str, expected_body: str
) -> None:
    reply = send(imds, "GET", path, {TOKEN_HEADER: get_token(imds)})

    assert (reply.status, reply.body) == (200, expected_body)
    assert reply.headers["Content-Type"] == "text/plain"


def test_ipv6s_is_404_when_the_interface_has_none(imds: LocalImdsServer) -> None:
    reply = send(imds, "GET", INTERFACE + "ipv6s", {TOKEN_HEADER: get_token(imds)})

    assert reply.status == 404


def test_ipv6s_are_newline_separated_when_present() -> None:
    metadata = dataclasses.replace(METADATA, ipv6s=("2a05:d018::10", "2a05:d018::11"))
    with LocalImdsServer(metadata) as server:
        reply = send(server, "GET", INTERFACE + "ipv6s", {TOKEN_HEADER: get_token(server)})

    assert (reply.status, reply.body) == (200, "2a05:d018::10\n2a05:d018::11")


@pytest.mark.parametrize(
    "path",
    [
        "/latest/meta-data/placement/partition-number",
        "/latest/meta-data/network/interfaces/macs/ff:ff:ff:ff:ff:ff/subnet-id",
        "/latest/meta-data/iam/security-credentials/",
        "/latest/user-data",
        "/",
    ],
)
def test_unknown_paths_are_404(imds: LocalImdsServer, path: str) -> None:
    reply = send(imds, "GET", path, {TOKEN_HEADER: get_token(imds)})

    assert reply.status == 404


def test_get_without_token_is_401(imds: LocalImdsServer) -> None:
    reply = send(imds, "GET", "/latest/meta-data/instance-id")

    assert reply.status == 401
    assert reply.body == ""


def test_get_with_unknown_token_is_401(imds: LocalImdsServer) -> None:
    reply = send(imds, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: "forged"})

    assert reply.status == 401


def test_optional_tokens_allow_imdsv1_but_still_reject_unknown_tokens() -> None:
    with LocalImdsServer(METADATA, require_token=False) as server:
        without_token = send(server, "GET", "/latest/meta-data/instance-id")
        forged_token = send(
            server, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: "forged"}
        )

    assert (without_token.status, without_token.body) == (200, "i-0123456789abcdef0")
    assert forged_token.status == 401


@pytest.mark.parametrize("ttl", ["1", str(MAX_TOKEN_TTL_SECONDS)])
def test_token_ttl_bounds_are_accepted(imds: LocalImdsServer, ttl: str) -> None:
    reply = send(imds, "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: ttl})

    assert reply.status == 200
    assert reply.headers[TOKEN_TTL_HEADER] == ttl


@pytest.mark.parametrize("ttl", ["0", "-5", str(MAX_TOKEN_TTL_SECONDS + 1), "sixty", ""])
def test_token_ttl_out_of_bounds_or_malformed_is_400(imds: LocalImdsServer, ttl: str) -> None:
    reply = send(imds, "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: ttl})

    assert reply.status == 400


def test_token_put_without_ttl_header_is_400(imds: LocalImdsServer) -> None:
    reply = send(imds, "PUT", TOKEN_PATH)

    assert reply.status == 400


def test_token_expires_after_its_ttl() -> None:
    clock = ManualClock()
    with LocalImdsServer(METADATA, clock=clock) as server:
        token = get_token(server, ttl_seconds=5)
        clock.now += 4.9
        before_expiry = send(server, "GET", "/latest/meta-data/mac", {TOKEN_HEADER: token})
        clock.now += 0.2
        after_expiry = send(server, "GET", "/latest/meta-data/mac", {TOKEN_HEADER: token})

    assert before_expiry.status == 200
    assert after_expiry.status == 401


def test_forced_token_status_answers_put_with_it() -> None:
    with LocalImdsServer(METADATA, token_status=403) as server:
        put = send(server, "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: "60"})
        get = send(server, "GET", "/latest/meta-data/mac", {TOKEN_HEADER: put.body})

    assert (put.status, put.body) == (403, "")
    assert get.status == 401


def test_get_on_token_path_is_405(imds: LocalImdsServer) -> None:
    reply = send(imds, "GET", TOKEN_PATH)

    assert reply.status == 405
    assert reply.headers["Allow"] == "PUT"


def test_delay_makes_a_short_client_timeout_expire_and_stop_stays_quick() -> None:
    server = LocalImdsServer(METADATA, delay_seconds=5.0).start()
    try:
        with pytest.raises(TimeoutError):
            send(server, "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: "60"}, timeout=0.2)
    finally:
        started = time.monotonic()
        server.stop()
        stopped_after = time.monotonic() - started

    assert stopped_after < 2.0


def test_delay_shorter_than_client_timeout_still_answers() -> None:
    with LocalImdsServer(METADATA, delay_seconds=0.2) as server:
        started = time.monotonic()
        reply = send(server, "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: "60"})
        waited = time.monotonic() - started

    assert reply.status == 200
    assert waited >= 0.2


def test_request_log_lists_method_and_path_in_order(imds: LocalImdsServer) -> None:
    token = get_token(imds)
    send(imds, "GET", "/latest/meta-data/placement/region", {TOKEN_HEADER: token})
    send(imds, "GET", "/latest/meta-data/nothing-here", {TOKEN_HEADER: token})

    assert imds.requests == [
        ImdsRequest("PUT", TOKEN_PATH),
        ImdsRequest("GET", "/latest/meta-data/placement/region"),
        ImdsRequest("GET", "/latest/meta-data/nothing-here"),
    ]


def test_requests_write_nothing_to_stderr(
    imds: LocalImdsServer, capfd: pytest.CaptureFixture[str]
) -> None:
    token = get_token(imds)
    send(imds, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: token})
    send(imds, "GET", "/latest/meta-data/instance-id")
    send(imds, "DELETE", "/latest/meta-data/instance-id")

    assert capfd.readouterr().err == ""


def test_url_is_loopback_with_the_bound_port(imds: LocalImdsServer) -> None:
    assert imds.url == f"http://127.0.0.1:{imds.port}"


def test_stop_releases_the_port() -> None:
    server = LocalImdsServer(METADATA).start()
    port = server.port
    server.stop()

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_refuses_to_bind_outside_loopback() -> None:
    with pytest.raises(ValueError):
        LocalImdsServer(METADATA, host="0.0.0.0")
