"""The test transfer: PUT a canary object, GET it back and compare, DELETE it, through a target's
own hostname, recording per step where the bytes really went and how long each phase took.

The peer address is read from the socket of the request (``getpeername()`` on the connection
urllib3 opened for botocore), never from a second DNS lookup: that is what makes the transfer
evidence about the path. Phase timings come from the same instrumented connection: DNS
(getaddrinfo), TCP connect, TLS handshake (and a proxy's CONNECT, when there is one), first byte
(request sent to response headers), total.

The canary is deleted on every path out: errors, SIGINT and SIGTERM included (the handlers are
swapped for the transfer's duration so that ``finally`` runs). Canaries older than one hour under
the prefix (left by a killed run) are removed first. An AccessDenied is a policy denial (S3
answered, so the network path worked), not a network failure.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from s3_route_agent.aws import USER_AGENT_EXTRA
from s3_route_agent.live.canary import IN_FLIGHT, InFlightCanary
from s3_route_agent.engine.hostnames import GLOBAL_ENDPOINT_REGION, parse_s3_host
from s3_route_agent.engine.model import Target

logger = logging.getLogger(__name__)

STALE_CANARY_SECONDS = 3600.0
# S3 error codes that mean "a policy said no" (S3 API reference, "Error responses"): the request
# reached S3 and was refused, so the network path itself worked.
POLICY_DENIAL_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId",
                                 "SignatureDoesNotMatch", "AccountProblem"})
# Forms a canary can go through; the rest (MRAP needs SigV4A, access points need an access point
# ARN, acceleration must be enabled per bucket, control/website/express are other APIs) are skipped.
TRANSFER_FORMS = ("regional", "global", "dash_region", "dualstack", "fips", "vpce")


@dataclass(frozen=True)
class TransferPlan:
    """How a normal boto3 client reaches the bucket through this hostname."""

    host: str
    bucket: str
    endpoint_url: str
    addressing_style: str            # "virtual" or "path"
    signing_region: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"host": self.host, "bucket": self.bucket, "endpoint_url": self.endpoint_url,
                "addressing_style": self.addressing_style, "signing_region": self.signing_region}


def plan_transfer(target: Target, region: str, canary_bucket: str | None
                  ) -> tuple[TransferPlan | None, str | None]:
    """The plan for ``target``, or (None, why not). Pure.

    A name that carries a bucket (``b.s3.R.amazonaws.com``, ``b.bucket.vpce-….vpce…``) is reached
    virtual-hosted from the name without the bucket; a name without one takes the canary bucket
    path-style, so the connection still goes to exactly the target's hostname. Buckets with dots
    go path-style (a wildcard certificate covers one label: S3 user guide, "Virtual hosting").
    """
    form = parse_s3_host(target.host)
    if form.form not in TRANSFER_FORMS:
        return None, f"{target.host} is a {form.form} name: no canary transfer through it"
    bucket = form.bucket or target.bucket or canary_bucket
    if not bucket:
        return None, f"{target.host} names no bucket and transfer.bucket is not set"
    signing = form.region or region
    if form.form == "global":
        signing = GLOBAL_ENDPOINT_REGION
    if form.bucket:
        base = target.host[len(form.bucket) + 1:]
        if form.form == "vpce":
            base = base.removeprefix("bucket.")
            base = f"bucket.{base}"
        if "." in form.bucket:
            return TransferPlan(target.host, bucket, f"https://{base}", "path", signing), None
        return TransferPlan(target.host, bucket, f"https://{base}", "virtual", signing), None
    return TransferPlan(target.host, bucket, f"https://{target.host}", "path", signing), None


@dataclass
class StepResult:
    """One request of the transfer and what its connection looked like."""

    step: str                        # "cleanup", "put", "get", "delete"
    ok: bool = False
    http_status: int | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    total_ms: float | None = None
    bytes: int = 0
    throughput_mbps: float | None = None
    peer_address: str | None = None
    peer_port: int | None = None
    local_address: str | None = None
    resolved: list[str] = field(default_factory=list)
    served_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (milliseconds rounded to 0.1)."""
        out = dict(self.__dict__)
        for key in ("dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms",
                    "throughput_mbps"):
            if out[key] is not None:
                out[key] = round(out[key], 2 if key == "throughput_mbps" else 1)
        return out


@dataclass
class TransferResult:
    """The whole transfer for one target."""

    host: str
    outcome: str                     # ok, policy_denied, network_error, s3_error,
                                     # checksum_mismatch, interrupted, skipped
    message: str
    plan: TransferPlan | None = None
    key: str | None = None
    size_bytes: int = 0
    steps: list[StepResult] = field(default_factory=list)
    checksum_match: bool | None = None
    canary_deleted: bool | None = None
    stale_canaries_removed: int = 0

    @property
    def ok(self) -> bool:
        """True when PUT, GET (checksum equal) and DELETE all worked."""
        return self.outcome == "ok"

    @property
    def peer_address(self) -> str | None:
        """The address the transfer's connections really went to (first step that connected)."""
        return next((s.peer_address for s in self.steps if s.peer_address), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the report's per-target ``transfer`` section)."""
        return {"host": self.host, "outcome": self.outcome, "ok": self.ok,
                "message": self.message, "plan": self.plan.to_dict() if self.plan else None,
                "key": self.key, "size_bytes": self.size_bytes,
                "peer_address": self.peer_address, "checksum_match": self.checksum_match,
                "canary_deleted": self.canary_deleted,
                "stale_canaries_removed": self.stale_canaries_removed,
                "steps": [s.to_dict() for s in self.steps]}


# ---- connection instrumentation ---------------------------------------------------------------

class _Recorder:
    """Collects what the instrumented connection saw during the current step."""

    def __init__(self) -> None:
        self.step: StepResult | None = None
        self.request_started: float | None = None


def _instrumented_pools(recorder: _Recorder) -> dict[str, type]:
    """Pool classes whose connections time each phase and read the peer from the socket."""
    from botocore.awsrequest import (AWSHTTPConnection, AWSHTTPConnectionPool,
                                     AWSHTTPSConnection, AWSHTTPSConnectionPool)
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    class Timed:
        def _new_conn(self) -> socket.socket:  # type: ignore[override]
            step = recorder.step
            host, port = self._dns_host, self.port  # type: ignore[attr-defined]
            started = time.perf_counter()
            try:
                infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise NameResolutionError(host, self, exc) from exc  # type: ignore[arg-type]
            resolved = time.perf_counter()
            error: OSError | None = None
            sock: socket.socket | None = None
            for family, kind, proto, _, address in infos:
                sock = socket.socket(family, kind, proto)
                try:
                    for option in self.socket_options or ():  # type: ignore[attr-defined]
                        sock.setsockopt(*option)
                    timeout = self.timeout  # type: ignore[attr-defined]
                    if isinstance(timeout, (int, float)):
                        sock.settimeout(timeout)
                    if self.source_address:  # type: ignore[attr-defined]
                        sock.bind(self.source_address)  # type: ignore[attr-defined]
                    sock.connect(address)
                    break
                except socket.timeout as exc:
                    sock.close()
                    sock = None
                    raise ConnectTimeoutError(self, f"Connection to {host} timed out") from exc
                except OSError as exc:
                    error = exc
                    sock.close()
                    sock = None
            if sock is None:
                raise NewConnectionError(self, f"Failed to establish a new connection: {error}")  # type: ignore[arg-type]
            connected = time.perf_counter()
            if step is not None:
                step.dns_ms = (resolved - started) * 1000
                step.connect_ms = (connected - resolved) * 1000
                peer = sock.getpeername()
                step.peer_address, step.peer_port = peer[0], int(peer[1])
                step.local_address = sock.getsockname()[0]
                step.resolved = sorted({info[4][0] for info in infos})
            return sock

        def connect(self) -> None:
            started = time.perf_counter()
            super().connect()  # type: ignore[misc]
            step = recorder.step
            if step is not None and step.dns_ms is not None and step.connect_ms is not None:
                rest = (time.perf_counter() - started) * 1000 - step.dns_ms - step.connect_ms
                step.tls_ms = max(0.0, rest) if isinstance(self, AWSHTTPSConnection) else None

        def request(self, *args: Any, **kwargs: Any) -> Any:
            recorder.request_started = time.perf_counter()
            return super().request(*args, **kwargs)  # type: ignore[misc]

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
            step = recorder.step
            if step is not None and recorder.request_started is not None:
                step.first_byte_ms = (time.perf_counter() - recorder.request_started) * 1000
            if step is not None and step.peer_address is None and self.sock is not None:  # type: ignore[attr-defined]
                peer = self.sock.getpeername()  # type: ignore[attr-defined]  # a reused connection
                step.peer_address, step.peer_port = peer[0], int(peer[1])
            return response

    class HttpsConn(Timed, AWSHTTPSConnection):  # type: ignore[misc]
        pass

    class HttpConn(Timed, AWSHTTPConnection):  # type: ignore[misc]
        pass

    class HttpsPool(AWSHTTPSConnectionPool):
        ConnectionCls = HttpsConn

    class HttpPool(AWSHTTPConnectionPool):
        ConnectionCls = HttpConn

    return {"https": HttpsPool, "http": HttpPool}


def make_transfer_client(plan: TransferPlan, timeout: float, recorder: _Recorder,
                         session: boto3.session.Session | None = None) -> Any:
    """An S3 client as a normal boto3 user would build it for this name, instrumented.

    Proxies come from the environment exactly as botocore applies them (HTTPS_PROXY, NO_PROXY),
    so a proxied host's transfer goes through the proxy and its peer address is the proxy's.
    """
    session = session or boto3.session.Session()
    client = session.client(
        "s3", region_name=plan.signing_region, endpoint_url=plan.endpoint_url,
        config=Config(s3={"addressing_style": plan.addressing_style},
                      retries={"mode": "standard", "total_max_attempts": 1},
                      connect_timeout=timeout, read_timeout=timeout,
                      user_agent_extra=USER_AGENT_EXTRA))
    pools = client._endpoint.http_session._pool_classes_by_scheme  # shared with its managers
    pools.update(_instrumented_pools(recorder))

    def served_by(http_response: Any = None, **_: Any) -> None:
        if recorder.step is not None and http_response is not None:
            recorder.step.served_by = http_response.headers.get("x-lab-served-by")
    client.meta.events.register("after-call.s3.*", lambda **kw: served_by(
        kw.get("http_response")))
    return client


# ---- the transfer ------------------------------------------------------------------------------

def canary_key(prefix: str, host: str, now: float) -> str:
    """A unique key under ``prefix`` naming the host and the time (sorts by age)."""
    stamp = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{stamp}-{host.replace('.', '_')[:80]}-{uuid.uuid4().hex[:12]}"


def _run_step(name: str, recorder: _Recorder, call: Callable[[], tuple[Any, int]]) -> StepResult:
    """Run one S3 call and fill its StepResult (status, request id, error code, timings)."""
    step = StepResult(step=name)
    recorder.step, recorder.request_started = step, None
    started = time.perf_counter()
    try:
        response, size = call()
        meta = response.get("ResponseMetadata", {})
        step.ok, step.http_status = True, meta.get("HTTPStatusCode")
        step.request_id = meta.get("RequestId")
        step.bytes = size
    except ClientError as exc:
        meta = exc.response.get("ResponseMetadata", {})
        step.http_status = meta.get("HTTPStatusCode")
        step.request_id = meta.get("RequestId")
        step.error_code = exc.response.get("Error", {}).get("Code") or "ClientError"
        step.error_message = str(exc.response.get("Error", {}).get("Message") or exc)
    except BotoCoreError as exc:
        step.error_code = "network_error"
        step.error_message = f"{type(exc).__name__}: {exc}"
    finally:
        step.total_ms = (time.perf_counter() - started) * 1000
        recorder.step = None
    if step.bytes and step.total_ms:
        step.throughput_mbps = step.bytes * 8 / 1e6 / (step.total_ms / 1000)
    return step


@dataclass
class _Interrupted(BaseException):
    signum: int


def _interruptible() -> tuple[Callable[[], None], Callable[[], None]]:
    """Turn SIGINT/SIGTERM into an exception for the transfer's duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return (lambda: None), (lambda: None)
    saved: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        raise _Interrupted(signum)

    def install() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in saved.items():
            signal.signal(sig, old)
    return install, restore


def remove_stale_canaries(client: Any, bucket: str, prefix: str, now: float,
                          max_age: float = STALE_CANARY_SECONDS) -> int:
    """Delete canaries under ``prefix`` older than ``max_age`` seconds; returns how many."""
    removed = 0
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            age = now - obj["LastModified"].timestamp()
            if age > max_age:
                client.delete_object(Bucket=bucket, Key=obj["Key"])
                removed += 1
    return removed


def run_transfer(plan: TransferPlan, *, prefix: str, size_bytes: int, timeout: float,
                 clock: Callable[[], float] = time.time,
                 client_factory: Callable[[TransferPlan, float, _Recorder], Any] = make_transfer_client,
                 ) -> TransferResult:
    """PUT, GET (+ checksum), DELETE one canary through ``plan``; never raises for S3 or network.

    SIGINT/SIGTERM during the transfer still delete the canary; the signal is then re-raised
    as KeyboardInterrupt (SIGINT) or SystemExit (SIGTERM) after cleanup.
    """
    result = TransferResult(host=plan.host, outcome="ok", message="", plan=plan,
                            size_bytes=size_bytes)
    recorder = _Recorder()
    body = os.urandom(size_bytes)
    digest = hashlib.sha256(body).hexdigest()
    key = canary_key(prefix, plan.host, clock())
    result.key = key
    install, restore = _interruptible()
    interrupted: _Interrupted | None = None
    put_sent = False
    in_flight: int | None = None    # token in s3_route_agent.live.canary.IN_FLIGHT (the daemon's stop)

    def client() -> Any:
        return client_factory(plan, timeout, recorder)  # a new connection per step: full phases

    install()
    try:
        removed = {"n": 0}

        def cleanup() -> tuple[Any, int]:
            removed["n"] = remove_stale_canaries(client(), plan.bucket, prefix, clock())
            return {"ResponseMetadata": {"HTTPStatusCode": 200}}, 0
        cleanup_step = _run_step("cleanup", recorder, cleanup)
        result.stale_canaries_removed = removed["n"]
        result.steps.append(cleanup_step)

        # Announced before the PUT: a daemon told to stop mid-transfer deletes it (s3_route_agent.live.canary).
        in_flight = IN_FLIGHT.add(InFlightCanary(plan.bucket, key, plan.host, lambda t: (
            client_factory(plan, t, _Recorder()))))
        put_sent = True
        put = _run_step("put", recorder, lambda: (client().put_object(
            Bucket=plan.bucket, Key=key, Body=body), size_bytes))
        result.steps.append(put)
        if put.ok:
            got: dict[str, bytes] = {}

            def get() -> tuple[Any, int]:
                response = client().get_object(Bucket=plan.bucket, Key=key)
                got["body"] = response["Body"].read()
                return response, len(got["body"])
            get_step = _run_step("get", recorder, get)
            result.steps.append(get_step)
            if get_step.ok:
                result.checksum_match = hashlib.sha256(got["body"]).hexdigest() == digest
    except _Interrupted as exc:
        interrupted = exc
    finally:
        if put_sent:
            delete = _run_step("delete", recorder, lambda: (client().delete_object(
                Bucket=plan.bucket, Key=key), 0))
            result.steps.append(delete)
            result.canary_deleted = delete.ok
        IN_FLIGHT.discard(in_flight)
        restore()
    _judge(result, interrupted)
    if interrupted is not None:
        logger.warning("transfer through %s interrupted by signal %d; canary %s deleted: %s",
                       plan.host, interrupted.signum, key, result.canary_deleted)
        if interrupted.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + interrupted.signum)
    return result


def _judge(result: TransferResult, interrupted: _Interrupted | None) -> None:
    """Set outcome and message from the steps."""
    by = {s.step: s for s in result.steps}
    failed = next((s for s in result.steps if not s.ok and s.step in ("put", "get")), None)
    if interrupted is not None:
        result.outcome, result.message = "interrupted", f"interrupted by signal {interrupted.signum}"
    elif failed is not None and failed.error_code in POLICY_DENIAL_CODES:
        result.outcome = "policy_denied"
        result.message = (f"S3 refused the {failed.step.upper()} ({failed.error_code}, HTTP "
                          f"{failed.http_status}) from {failed.peer_address}: a bucket, endpoint "
                          "or IAM policy denies it; the network path itself worked")
    elif failed is not None and failed.error_code == "network_error":
        result.outcome = "network_error"
        result.message = f"{failed.step.upper()} failed on the network: {failed.error_message}"
    elif failed is not None:
        result.outcome = "s3_error"
        result.message = (f"{failed.step.upper()} answered {failed.error_code} (HTTP "
                          f"{failed.http_status}): {failed.error_message}")
    elif result.checksum_match is False:
        result.outcome, result.message = "checksum_mismatch", "the canary read back differs"
    else:
        put = by.get("put")
        result.outcome = "ok"
        result.message = (f"PUT/GET/DELETE of {result.size_bytes} bytes through {result.host} "
                          f"via {put.peer_address if put else '?'}")
    if result.canary_deleted is False and result.outcome == "ok":
        delete = by["delete"]
        result.outcome = "s3_error" if delete.error_code != "network_error" else "network_error"
        result.message = f"DELETE of the canary failed: {delete.error_code}: {delete.error_message}"

