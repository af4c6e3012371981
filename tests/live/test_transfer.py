"""The test transfer: plans per hostname form, and real transfers against moto on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from s3_route_agent.engine.model import Expect, Target
from s3_route_agent.config import AgentConfig
from s3_route_agent.engine.evidence import TransferPlan
from s3_route_agent.live.transfer import plan_transfer, run_transfer
from s3_route_agent.wiring import AwsClients

# The transfer's S3 clients, built as the agent's wiring builds them.
CLIENT_FOR = AwsClients(AgentConfig()).s3_for_plan

VPCE = "vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com"
PREFIX = "s3-route-agent/canary/"


@pytest.fixture(autouse=True)
def safe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no IMDS, no proxies: nothing reaches AWS."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


PLANS = [
    ("b.s3.eu-west-1.amazonaws.com", None, "https://s3.eu-west-1.amazonaws.com", "b", "virtual", "eu-west-1"),
    ("s3.eu-west-1.amazonaws.com", None, "https://s3.eu-west-1.amazonaws.com", "canary", "path", "eu-west-1"),
    ("b.s3.amazonaws.com", None, "https://s3.amazonaws.com", "b", "virtual", "us-east-1"),
    ("s3.amazonaws.com", None, "https://s3.amazonaws.com", "canary", "path", "us-east-1"),
    ("s3-eu-west-1.amazonaws.com", "b", "https://s3-eu-west-1.amazonaws.com", "b", "path", "eu-west-1"),
    (f"b.bucket.{VPCE}", None, f"https://bucket.{VPCE}", "b", "virtual", "eu-west-1"),
    (f"bucket.{VPCE}", None, f"https://bucket.{VPCE}", "canary", "path", "eu-west-1"),
    ("my.dotted.bucket.s3.eu-west-1.amazonaws.com", None, "https://s3.eu-west-1.amazonaws.com",
     "my.dotted.bucket", "path", "eu-west-1"),
    # FIPS and dual-stack are flags on the regional form: still one canary through the name.
    ("b.s3.dualstack.eu-west-1.amazonaws.com", None, "https://s3.dualstack.eu-west-1.amazonaws.com",
     "b", "virtual", "eu-west-1"),
    ("b.s3-fips.dualstack.us-east-1.amazonaws.com", None,
     "https://s3-fips.dualstack.us-east-1.amazonaws.com", "b", "virtual", "us-east-1"),
]


@pytest.mark.parametrize("host,bucket,endpoint,want_bucket,style,region", PLANS)
def test_plan(host, bucket, endpoint, want_bucket, style, region) -> None:
    """Each transferable form gets the endpoint URL, bucket and addressing style it needs."""
    plan, why = plan_transfer(Target("t", host, Expect.ANY, bucket), "eu-west-1", "canary")
    assert why is None and plan is not None
    assert (plan.endpoint_url, plan.bucket, plan.addressing_style, plan.signing_region) == (
        endpoint, want_bucket, style, region)


@pytest.mark.parametrize("host", ["alias.mrap.accesspoint.s3-global.amazonaws.com",
                                  "b.s3-accelerate.amazonaws.com",
                                  "s3-control.eu-west-1.amazonaws.com", "example.com",
                                  "d--euw1-az1--x-s3.s3express-euw1-az1.eu-west-1.amazonaws.com",
                                  "s3express-control.eu-west-1.amazonaws.com",
                                  "ol-123456789012.s3-object-lambda.eu-west-1.amazonaws.com",
                                  "ap-123456789012.op-01234567890abcdef.s3-outposts.eu-west-1"
                                  ".amazonaws.com",
                                  f"ap-123456789012.accesspoint.{VPCE}",
                                  f"b.control.{VPCE}", f"accesspoint.{VPCE}"])
def test_plan_refuses_other_forms(host: str) -> None:
    """Names a canary cannot go through are skipped with a reason."""
    plan, why = plan_transfer(Target("t", host, Expect.ANY), "eu-west-1", "canary")
    assert plan is None and why


def test_plan_needs_a_bucket() -> None:
    """A name without a bucket and no canary bucket: skipped with the reason."""
    plan, why = plan_transfer(Target("t", "s3.eu-west-1.amazonaws.com", Expect.ANY), "eu-west-1", None)
    assert plan is None and "transfer.bucket" in why


@pytest.fixture
def moto_url():
    """moto on 127.0.0.1 with one bucket."""
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    bucket = f"canary-{uuid.uuid4().hex[:12]}"   # moto's state outlives one server
    boto3.client("s3", region_name="eu-west-1", endpoint_url=url).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    _BUCKETS[url] = bucket
    yield url
    server.stop()


_BUCKETS: dict[str, str] = {}


def _bucket(url: str) -> str:
    return _BUCKETS[url]


def _keys(url: str) -> list[str]:
    listed = boto3.client("s3", region_name="eu-west-1", endpoint_url=url).list_objects_v2(
        Bucket=_bucket(url))
    return [o["Key"] for o in listed.get("Contents", [])]


def test_transfer_round_trip(moto_url: str) -> None:
    """PUT, GET with equal checksum, DELETE; peer from the socket; phases; canary gone."""
    plan = TransferPlan("127.0.0.1", _bucket(moto_url), moto_url, "path", "eu-west-1")
    result = run_transfer(plan, client_for=CLIENT_FOR, prefix=PREFIX, size_bytes=100_000, timeout=5)
    assert result.ok, result.message
    assert result.checksum_match is True and result.canary_deleted is True
    assert result.peer_address == "127.0.0.1"
    put = next(s for s in result.steps if s.step == "put")
    assert put.http_status == 200 and put.request_id
    assert put.dns_ms is not None and put.connect_ms is not None and put.first_byte_ms is not None
    assert put.tls_ms is None          # plain HTTP: no handshake
    assert result.key.startswith(PREFIX)
    assert _keys(moto_url) == []


def test_stale_canaries_removed(moto_url: str) -> None:
    """Canaries older than an hour under the prefix are removed at start; others stay."""
    import datetime
    from moto.backends import get_backend
    from s3_route_agent.devenv.localenv.moto_patches import ACCOUNT_ID
    bucket = _bucket(moto_url)
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=moto_url)
    for key in (f"{PREFIX}old", f"{PREFIX}young", "old-but-not-a-canary"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    keys = get_backend("s3")[ACCOUNT_ID]["global"].buckets[bucket].keys
    for key in (f"{PREFIX}old", "old-but-not-a-canary"):
        keys[key].last_modified -= datetime.timedelta(hours=2)   # left by a killed run
    plan = TransferPlan("127.0.0.1", bucket, moto_url, "path", "eu-west-1")
    result = run_transfer(plan, client_for=CLIENT_FOR, prefix=PREFIX, size_bytes=10, timeout=5)
    assert result.ok and result.stale_canaries_removed == 1
    assert sorted(_keys(moto_url)) == sorted([f"{PREFIX}young", "old-but-not-a-canary"])


class _Denying(BaseHTTPRequestHandler):
    """Answers every request as S3 does for a policy denial."""

    def _deny(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Access Denied</Message><RequestId>DENY1</RequestId></Error>")
        self.send_response(403)
        self.send_header("x-amz-request-id", "DENY1")
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_DELETE = _deny

    def log_message(self, *args: object) -> None:
        """Quiet."""


def test_access_denied_is_a_policy_denial() -> None:
    """AccessDenied: outcome policy_denied with the peer, not a network failure."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Denying)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_transfer(TransferPlan("127.0.0.1", "canary", url, "path", "eu-west-1"),
                              client_for=CLIENT_FOR, prefix=PREFIX, size_bytes=10, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert result.outcome == "policy_denied"
    assert "AccessDenied" in result.message and "network path itself worked" in result.message
    put = next(s for s in result.steps if s.step == "put")
    assert put.http_status == 403 and put.request_id == "DENY1" and put.peer_address == "127.0.0.1"


def test_network_failure() -> None:
    """Nothing listening: network_error, and the canary delete is still attempted."""
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    plan = TransferPlan("127.0.0.1", "canary", f"http://127.0.0.1:{port}", "path", "eu-west-1")
    result = run_transfer(plan, client_for=CLIENT_FOR, prefix=PREFIX, size_bytes=10, timeout=2)
    assert result.outcome == "network_error"
    assert [s.step for s in result.steps][-1] == "delete"


def test_sigterm_during_transfer_deletes_canary(moto_url: str) -> None:
    """SIGTERM in the middle of the transfer: the canary is deleted, then SystemExit."""
    plan = TransferPlan("127.0.0.1", _bucket(moto_url), moto_url, "path", "eu-west-1")

    def factory(p, timeout):
        client = CLIENT_FOR(p, timeout)
        client.meta.events.register("after-call.s3.PutObject",
                                    lambda **_: os.kill(os.getpid(), signal.SIGTERM))
        return client
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc:
        run_transfer(plan, client_for=factory, prefix=PREFIX, size_bytes=1000, timeout=5)
    assert exc.value.code == 128 + signal.SIGTERM
    assert _keys(moto_url) == []
    assert signal.getsignal(signal.SIGTERM) == before
