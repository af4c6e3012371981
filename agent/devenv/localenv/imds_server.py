"""An IMDSv2 emulator over HTTP on 127.0.0.1, serving the metadata the agent reads.

Token flow as on EC2: ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds``
(1..21600) returns a token; GETs under ``/latest/meta-data/`` carry it in
``X-aws-ec2-metadata-token``. A missing token answers 401 when tokens are required, and so does
an unknown or expired one in any mode. Failure knobs (forced PUT status, response delay) let
tests exercise the agent's error paths.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import NamedTuple

logger = logging.getLogger(__name__)

TOKEN_PATH = "/latest/api/token"
"""Where the session token is requested (PUT)."""

METADATA_PREFIX = "/latest/meta-data/"
"""Every metadata path the emulator serves starts with this."""

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
"""Request header of the token PUT (and response header echoing the granted TTL)."""

TOKEN_HEADER = "X-aws-ec2-metadata-token"
"""Request header carrying the session token on metadata GETs."""

MAX_TOKEN_TTL_SECONDS = 21600
"""Longest token lifetime IMDS grants (6 hours)."""

_STOP_BUDGET_SECONDS = 2.0


@dataclass(frozen=True)
class InstanceMetadata:
    """The facts about one instance and its primary network interface that the emulator serves."""

    region: str
    availability_zone: str
    instance_id: str
    mac: str
    subnet_id: str
    vpc_id: str
    interface_id: str
    local_ipv4s: tuple[str, ...]
    ipv6s: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    def documents(self) -> dict[str, str]:
        """Map each served path below ``/latest/meta-data/`` to its response body."""
        interface_prefix = f"network/interfaces/macs/{self.mac}/"
        documents = {
            "placement/region": self.region,
            "placement/availability-zone": self.availability_zone,
            "instance-id": self.instance_id,
            "mac": self.mac,
            interface_prefix + "subnet-id": self.subnet_id,
            interface_prefix + "vpc-id": self.vpc_id,
            interface_prefix + "interface-id": self.interface_id,
            interface_prefix + "local-ipv4s": "\n".join(self.local_ipv4s),
        }
        if self.ipv6s:
            documents[interface_prefix + "ipv6s"] = "\n".join(self.ipv6s)
        if self.security_group_ids:
            # One id per line, as on EC2 ("Instance metadata categories":
            # network/interfaces/macs/mac/security-group-ids).
            documents[interface_prefix + "security-group-ids"] = "\n".join(
                self.security_group_ids)
        return documents


class _LoopbackHttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that never looks its own name up.

    ``HTTPServer.server_bind`` calls ``socket.getfqdn(host)``, a reverse lookup that can reach
    the system's DNS server; here the server name is simply the bound address.
    """

    daemon_threads = True

    def server_bind(self) -> None:
        """Bind the socket and record the address as the server name, without any lookup."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class ImdsRequest(NamedTuple):
    """One request the emulator received."""

    method: str
    path: str


class LocalImdsServer:
    """IMDSv2 emulator on a loopback address, running in daemon threads.

    ``require_token=False`` also accepts GETs without a token (IMDSv1); ``token_status`` makes
    every token PUT answer that HTTP status with an empty body; ``delay_seconds`` makes every
    request wait that long before it is answered. ``clock`` decides token expiry (monotonic
    seconds), so tests can expire a token without sleeping.
    """

    def __init__(
        self,
        metadata: InstanceMetadata,
        *,
        require_token: bool = True,
        token_status: int | None = None,
        delay_seconds: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare an emulator serving *metadata*; *host* must be loopback, *port* 0 picks one."""
        if not ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).version != 4:
            raise ValueError(f"LocalImdsServer binds only to IPv4 loopback, not {host}")
        if delay_seconds < 0:
            raise ValueError("delay_seconds must not be negative")
        self.metadata = metadata
        self.require_token = require_token
        self.token_status = token_status
        self.delay_seconds = delay_seconds
        self._host = host
        self._requested_port = port
        self._clock = clock
        self._documents = metadata.documents()
        self._token_expiries: dict[str, float] = {}
        self._requests: list[ImdsRequest] = []
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._http_server: _LoopbackHttpServer | None = None
        self._serve_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port the emulator listens on (only while started)."""
        if self._http_server is None:
            raise RuntimeError("LocalImdsServer is not started")
        return int(self._http_server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the emulator, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self._host}:{self.port}"

    @property
    def requests(self) -> list[ImdsRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def start(self) -> LocalImdsServer:
        """Bind the listening socket and start serving; returns the emulator itself."""
        if self._http_server is not None:
            raise RuntimeError("LocalImdsServer is already started")
        self._stop_event.clear()
        self._http_server = _LoopbackHttpServer(
            (self._host, self._requested_port), _handler_class_for(self)
        )
        self._serve_thread = threading.Thread(
            target=self._http_server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"local-imds-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()
        logger.debug("local IMDS emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, cut short any delayed responses and close the socket."""
        if self._http_server is None or self._serve_thread is None:
            return
        self._stop_event.set()
        self._http_server.shutdown()
        self._serve_thread.join(timeout=_STOP_BUDGET_SECONDS)
        self._http_server.server_close()
        self._http_server = None
        self._serve_thread = None

    def __enter__(self) -> LocalImdsServer:
        """Start the emulator."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the emulator."""
        self.stop()

    def _record(self, method: str, path: str) -> None:
        """Remember one received request."""
        with self._lock:
            self._requests.append(ImdsRequest(method, path))

    def _wait_configured_delay(self) -> None:
        """Sleep for ``delay_seconds``, waking early when the emulator stops."""
        if self.delay_seconds > 0:
            self._stop_event.wait(self.delay_seconds)

    def _issue_token(self, ttl_header: str | None) -> tuple[int, str, dict[str, str]]:
        """Handle a token PUT: (status, body, extra headers)."""
        if self.token_status is not None:
            return self.token_status, "", {}
        if ttl_header is None:
            return HTTPStatus.BAD_REQUEST, "", {}
        try:
            ttl_seconds = int(ttl_header.strip())
        except ValueError:
            return HTTPStatus.BAD_REQUEST, "", {}
        if not 1 <= ttl_seconds <= MAX_TOKEN_TTL_SECONDS:
            return HTTPStatus.BAD_REQUEST, "", {}
        token = secrets.token_urlsafe(42)
        with self._lock:
            now = self._clock()
            self._token_expiries = {
                known: expiry for known, expiry in self._token_expiries.items() if expiry > now
            }
            self._token_expiries[token] = now + ttl_seconds
        return HTTPStatus.OK, token, {TOKEN_TTL_HEADER: str(ttl_seconds)}

    def _token_is_valid(self, token: str) -> bool:
        """True when *token* was issued by this emulator and has not expired."""
        with self._lock:
            expiry = self._token_expiries.get(token)
            return expiry is not None and self._clock() < expiry

    def _read_metadata(self, path: str, token: str | None) -> tuple[int, str]:
        """Handle a metadata GET: (status, body)."""
        if token is not None and not self._token_is_valid(token):
            return HTTPStatus.UNAUTHORIZED, ""
        if token is None and self.require_token:
            return HTTPStatus.UNAUTHORIZED, ""
        if not path.startswith(METADATA_PREFIX):
            return HTTPStatus.NOT_FOUND, ""
        document = self._documents.get(path[len(METADATA_PREFIX) :])
        if document is None:
            return HTTPStatus.NOT_FOUND, ""
        return HTTPStatus.OK, document


def _handler_class_for(emulator: LocalImdsServer) -> type[BaseHTTPRequestHandler]:
    """Build the request handler class bound to *emulator*."""

    class ImdsRequestHandler(BaseHTTPRequestHandler):
        """Answers IMDS requests from the emulator's state; writes nothing to stderr."""

        server_version = "EC2ws"
        sys_version = ""
        timeout = 5.0

        def do_PUT(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
            """Issue a session token."""
            emulator._record("PUT", self.path)
            emulator._wait_configured_delay()
            if self.path != TOKEN_PATH:
                self._reply(HTTPStatus.NOT_FOUND, "")
                return
            status, body, headers = emulator._issue_token(self.headers.get(TOKEN_TTL_HEADER))
            self._reply(status, body, headers)

        def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
            """Serve one metadata document."""
            emulator._record("GET", self.path)
            emulator._wait_configured_delay()
            if self.path == TOKEN_PATH:
                self._reply(HTTPStatus.METHOD_NOT_ALLOWED, "", {"Allow": "PUT"})
                return
            status, body = emulator._read_metadata(self.path, self.headers.get(TOKEN_HEADER))
            self._reply(status, body)

        def _reply(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
            """Send *status* with a plain-text *body*."""
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Keep request lines off stderr; send them to the debug log instead."""
            logger.debug("IMDS %s - %s", self.address_string(), format % args)

    return ImdsRequestHandler
