"""The test transfer: PUT a canary object, GET it back and compare, DELETE it, through a target's
own hostname, recording per step where the bytes really went and how long each phase took.

The peer address is read from the socket of the request (``getpeername()`` on the connection
urllib3 opened for botocore), never from a second DNS lookup: that is what makes the transfer
evidence about the path. Phase timings come from the same instrumented connection: DNS
(getaddrinfo), TCP connect, TLS handshake (and a proxy's CONNECT, when there is one), first byte
(request sent to response headers), total.

The canary is deleted on every path out: errors, SIGINT and SIGTERM included (the handlers are
swapped for the transfer's duration so that ``finally`` runs). Canaries older than
``transfer.stale_canary_seconds`` (one hour by default) under the prefix, left by a killed run,
are removed first, and once when the daemon starts (:func:`sweep_stale_canaries`). An AccessDenied is a policy denial (S3
answered, so the network path worked), not a network failure.

The S3 client of each step comes from the caller (``client_for(plan, timeout)``, built by
:mod:`s3_route_agent.wiring` like every other client); this module only instruments it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from s3_route_agent.aws import botocore_error, client_error
from s3_route_agent.engine.evidence import TransferPlan, TransferResult, TransferStep
from s3_route_agent.engine.hostnames import GLOBAL_ENDPOINT_REGION, HostForm, parse_s3_host
from s3_route_agent.engine.model import Expect, Target
from s3_route_agent.live.canary import IN_FLIGHT, InFlightCanary

logger = logging.getLogger(__name__)

STALE_CANARY_SECONDS = 3600.0   # the default of transfer.stale_canary_seconds
# S3 error codes that mean "a policy said no" (S3 API reference, "Error responses"): the request
# reached S3 and was refused, so the network path itself worked.
POLICY_DENIAL_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId",
                                 "SignatureDoesNotMatch", "AccountProblem"})
# Forms a canary can go through (regional ones with their FIPS and dual-stack flags too); the
# rest (MRAP needs SigV4A, access points, Object Lambda and Outposts need an access point ARN,
# acceleration must be enabled per bucket, control/website/express are other APIs) are skipped.
TRANSFER_FORMS = (HostForm.REGIONAL, HostForm.GLOBAL, HostForm.DASH_REGION, HostForm.VPCE)


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
        return None, f"{target.host} is a {form.form.value} name: no canary transfer through it"
    if form.vpce_scope in ("accesspoint", "control"):
        # accesspoint.vpce-… serves access point ARNs and control.vpce-… S3 Control, not a
        # bucket (S3 user guide, "AWS PrivateLink for Amazon S3": endpoint-specific DNS names).
        return None, (f"{target.host} is the {form.vpce_scope} name of {form.endpoint_id}: no "
                      "canary transfer through it")
    bucket = form.bucket or target.bucket or canary_bucket
    if not bucket:
        return None, f"{target.host} names no bucket and transfer.bucket is not set"
    signing = form.region or region
    if form.form is HostForm.GLOBAL:
        signing = GLOBAL_ENDPOINT_REGION
    if form.bucket:
        base = target.host[len(form.bucket) + 1:]
        if form.form is HostForm.VPCE and form.vpce_scope is None:
            # A scope-less endpoint name with something in front: reach it as the bucket. name.
            base = f"bucket.{base}"
        if "." in form.bucket:
            return TransferPlan(target.host, bucket, f"https://{base}", "path", signing), None
        return TransferPlan(target.host, bucket, f"https://{base}", "virtual", signing), None
    return TransferPlan(target.host, bucket, f"https://{target.host}", "path", signing), None


# A client for one step: (plan, timeout) -> boto3 S3 client aimed at the plan's endpoint.
ClientFor = Callable[[TransferPlan, float], Any]


# ---- connection instrumentation ---------------------------------------------------------------

class ConnectionRecorder:
    """Collects what the instrumented connection saw during the current step."""

    def __init__(self) -> None:
        """No step yet."""
        self.step: TransferStep | None = None
        self.request_started: float | None = None

    def note(self, **values: Any) -> None:
        """Record ``values`` (TransferStep fields) on the current step, if there is one."""
        if self.step is not None:
            self.step = dataclasses.replace(self.step, **values)


def _instrumented_pools(recorder: ConnectionRecorder) -> dict[str, type]:
    """Pool classes whose connections time each phase and read the peer from the socket."""
    from botocore.awsrequest import (AWSHTTPConnection, AWSHTTPConnectionPool,
                                     AWSHTTPSConnection, AWSHTTPSConnectionPool)
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    def resolution_error(host: str, pool: Any, exc: socket.gaierror) -> NewConnectionError:
        # urllib3 2 raises NameResolutionError (a NewConnectionError); urllib3 1.26, which
        # botocore installs on Python 3.9, has no such class: botocore maps either to
        # EndpointConnectionError.
        try:
            from urllib3.exceptions import NameResolutionError
        except ImportError:
            return NewConnectionError(pool, f"Failed to resolve '{host}' ({exc})")
        return NameResolutionError(host, pool, exc)  # type: ignore[arg-type]

    class Timed:
        def _new_conn(self) -> socket.socket:  # type: ignore[override]
            host, port = self._dns_host, self.port  # type: ignore[attr-defined]
            started = time.perf_counter()
            try:
                infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise resolution_error(host, self, exc) from exc
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
            peer = sock.getpeername()
            recorder.note(dns_ms=(resolved - started) * 1000,
                          connect_ms=(connected - resolved) * 1000,
                          peer_address=peer[0], peer_port=int(peer[1]),
                          local_address=sock.getsockname()[0],
                          resolved=tuple(sorted({info[4][0] for info in infos})))
            return sock

        def connect(self) -> None:
            started = time.perf_counter()
            super().connect()  # type: ignore[misc]
            step = recorder.step
            if step is not None and step.dns_ms is not None and step.connect_ms is not None:
                rest = (time.perf_counter() - started) * 1000 - step.dns_ms - step.connect_ms
                recorder.note(tls_ms=max(0.0, rest) if isinstance(self, AWSHTTPSConnection)
                              else None)

        def request(self, *args: Any, **kwargs: Any) -> Any:
            recorder.request_started = time.perf_counter()
            return super().request(*args, **kwargs)  # type: ignore[misc]

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
            if recorder.request_started is not None:
                recorder.note(first_byte_ms=(time.perf_counter() - recorder.request_started)
                              * 1000)
            step = recorder.step
            if step is not None and step.peer_address is None and self.sock is not None:  # type: ignore[attr-defined]
                peer = self.sock.getpeername()  # type: ignore[attr-defined]  # a reused connection
                recorder.note(peer_address=peer[0], peer_port=int(peer[1]))
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


def instrument(client: Any, recorder: ConnectionRecorder) -> Any:
    """``client`` (a boto3 S3 client) with connections that time each phase into ``recorder``.

    The peer address comes from the request's own socket. Proxies stay as botocore applies them
    (HTTPS_PROXY, NO_PROXY), so a proxied host's transfer goes through the proxy and its peer is
    the proxy's address.
    """
    pools = client._endpoint.http_session._pool_classes_by_scheme  # shared with its managers
    pools.update(_instrumented_pools(recorder))

    def served_by(http_response: Any = None, **_: Any) -> None:
        if http_response is not None:
            recorder.note(served_by=http_response.headers.get("x-lab-served-by"))
    client.meta.events.register("after-call.s3.*", lambda **kw: served_by(
        kw.get("http_response")))
    return client


# ---- the transfer ------------------------------------------------------------------------------

def canary_key(prefix: str, host: str, now: float) -> str:
    """A unique key under ``prefix`` naming the host and the time (sorts by age)."""
    stamp = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{stamp}-{host.replace('.', '_')[:80]}-{uuid.uuid4().hex[:12]}"


def run_step(name: str, recorder: ConnectionRecorder,
             call: Callable[[], tuple[Any, int]]) -> TransferStep:
    """Run one S3 call (returning its response and body size) and record the step: status,
    request id, error code, timings, peer. Never raises for S3 or network failures."""
    recorder.step, recorder.request_started = TransferStep(step=name), None
    started = time.perf_counter()
    try:
        response, size = call()
        meta = response.get("ResponseMetadata", {})
        recorder.note(ok=True, http_status=meta.get("HTTPStatusCode"),
                      request_id=meta.get("RequestId"), bytes=size)
    except client_error() as exc:
        meta = exc.response.get("ResponseMetadata", {})
        recorder.note(http_status=meta.get("HTTPStatusCode"), request_id=meta.get("RequestId"),
                      error_code=exc.response.get("Error", {}).get("Code") or "ClientError",
                      error_message=str(exc.response.get("Error", {}).get("Message") or exc))
    except botocore_error() as exc:
        recorder.note(error_code="network_error", error_message=f"{type(exc).__name__}: {exc}")
    finally:
        recorder.note(total_ms=(time.perf_counter() - started) * 1000)
        step, recorder.step = recorder.step, None
    assert step is not None
    if step.bytes and step.total_ms:
        step = dataclasses.replace(step, throughput_mbps=step.bytes * 8 / 1e6
                                   / (step.total_ms / 1000))
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


def sweep_stale_canaries(region: str, bucket: str, prefix: str, *, client_for: ClientFor,
                         timeout: float, max_age: float = STALE_CANARY_SECONDS,
                         clock: Callable[[], float] = time.time) -> int:
    """Delete canaries under ``prefix`` older than ``max_age`` (a killed run's) through the
    region's regional S3 name, as a transfer of the canary bucket would go; returns how many.

    The daemon runs this once at start, so that what a crash left behind goes even before the
    first transfer (which may be a jitter away). S3 and network errors are raised to the caller.
    """
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    target = Target(name="canary-sweep", host=f"s3.{region}.{suffix}", expect=Expect.ANY)
    plan, why_not = plan_transfer(target, region, bucket)
    if plan is None:
        raise ValueError(f"no way to reach the canary bucket {bucket}: {why_not}")
    return remove_stale_canaries(client_for(plan, timeout), plan.bucket, prefix, clock(), max_age)


def run_transfer(plan: TransferPlan, *, client_for: ClientFor, prefix: str, size_bytes: int,
                 timeout: float, stale_after_seconds: float = STALE_CANARY_SECONDS,
                 clock: Callable[[], float] = time.time) -> TransferResult:
    """PUT, GET (+ checksum), DELETE one canary through ``plan``; never raises for S3 or network.

    ``client_for(plan, timeout)`` builds each step's S3 client (a new connection per step, so
    every step shows all its phases). Canaries under ``prefix`` older than
    ``stale_after_seconds`` are deleted first. SIGINT/SIGTERM during the transfer still delete
    the canary; the signal is then re-raised as KeyboardInterrupt (SIGINT) or SystemExit
    (SIGTERM) after cleanup.
    """
    recorder = ConnectionRecorder()
    body = os.urandom(size_bytes)
    digest = hashlib.sha256(body).hexdigest()
    key = canary_key(prefix, plan.host, clock())
    steps: list[TransferStep] = []
    checksum_match: bool | None = None
    canary_deleted: bool | None = None
    install, restore = _interruptible()
    interrupted: _Interrupted | None = None
    put_sent = False
    in_flight: int | None = None    # token in live.canary.IN_FLIGHT (the daemon's stop)
    removed = 0
    started = time.perf_counter()

    def client() -> Any:
        return instrument(client_for(plan, timeout), recorder)

    install()
    try:
        def cleanup() -> tuple[Any, int]:
            nonlocal removed
            removed = remove_stale_canaries(client(), plan.bucket, prefix, clock(),
                                            stale_after_seconds)
            return {"ResponseMetadata": {"HTTPStatusCode": 200}}, 0
        steps.append(run_step("cleanup", recorder, cleanup))

        # Announced before the PUT: a daemon told to stop mid-transfer deletes it (live.canary).
        in_flight = IN_FLIGHT.add(InFlightCanary(plan.bucket, key, plan.host,
                                                 lambda t: client_for(plan, t)))
        put_sent = True
        put = run_step("put", recorder, lambda: (client().put_object(
            Bucket=plan.bucket, Key=key, Body=body), size_bytes))
        steps.append(put)
        if put.ok:
            got: dict[str, bytes] = {}

            def get() -> tuple[Any, int]:
                response = client().get_object(Bucket=plan.bucket, Key=key)
                got["body"] = response["Body"].read()
                return response, len(got["body"])
            get_step = run_step("get", recorder, get)
            steps.append(get_step)
            if get_step.ok:
                checksum_match = hashlib.sha256(got["body"]).hexdigest() == digest
    except _Interrupted as exc:
        interrupted = exc
    finally:
        if put_sent:
            delete = run_step("delete", recorder, lambda: (client().delete_object(
                Bucket=plan.bucket, Key=key), 0))
            steps.append(delete)
            canary_deleted = delete.ok
        IN_FLIGHT.discard(in_flight)
        restore()
    outcome, message = _judge(plan.host, size_bytes, steps, checksum_match, canary_deleted,
                              interrupted)
    result = TransferResult(host=plan.host, outcome=outcome, message=message, plan=plan,
                            key=key, size_bytes=size_bytes, steps=tuple(steps),
                            checksum_match=checksum_match, canary_deleted=canary_deleted,
                            stale_canaries_removed=removed,
                            duration_seconds=time.perf_counter() - started)
    if interrupted is not None:
        logger.warning("transfer through %s interrupted by signal %d; canary %s deleted: %s",
                       plan.host, interrupted.signum, key, canary_deleted)
        if interrupted.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + interrupted.signum)
    return result


def _judge(host: str, size_bytes: int, steps: list[TransferStep], checksum_match: bool | None,
           canary_deleted: bool | None, interrupted: _Interrupted | None) -> tuple[str, str]:
    """The transfer's outcome and message from its steps."""
    by = {s.step: s for s in steps}
    failed = next((s for s in steps if not s.ok and s.step in ("put", "get")), None)
    if interrupted is not None:
        outcome, message = "interrupted", f"interrupted by signal {interrupted.signum}"
    elif failed is not None and failed.error_code in POLICY_DENIAL_CODES:
        outcome = "policy_denied"
        message = (f"S3 refused the {failed.step.upper()} ({failed.error_code}, HTTP "
                   f"{failed.http_status}) from {failed.peer_address}: a bucket, endpoint "
                   "or IAM policy denies it; the network path itself worked")
    elif failed is not None and failed.error_code == "network_error":
        outcome = "network_error"
        message = f"{failed.step.upper()} failed on the network: {failed.error_message}"
    elif failed is not None:
        outcome = "s3_error"
        message = (f"{failed.step.upper()} answered {failed.error_code} (HTTP "
                   f"{failed.http_status}): {failed.error_message}")
    elif checksum_match is False:
        outcome, message = "checksum_mismatch", "the canary read back differs"
    else:
        put = by.get("put")
        outcome = "ok"
        message = (f"PUT/GET/DELETE of {size_bytes} bytes through {host} "
                   f"via {put.peer_address if put else '?'}")
    if canary_deleted is False and outcome == "ok":
        delete = by["delete"]
        outcome = "s3_error" if delete.error_code != "network_error" else "network_error"
        message = f"DELETE of the canary failed: {delete.error_code}: {delete.error_message}"
    return outcome, message
