"""The lab's AWS side: ``python -m s3_route_agent.devenv.lab.labd SPEC.json``, started inside the lab host namespace.

One process holds moto's backends (so EC2 and S3 share one state, and ``moto_patches`` can set
what moto lacks) and serves them, each listener bound *inside* a lab namespace:

* S3 over HTTPS (lab CA from trustme) on port 443 in the gateway-S3 namespace (198.51.100.10/.11,
  eu-west-1), the interface-endpoint ENI namespace (10.0.2.50) and the public us-east-1 S3
  namespace (203.0.113.10/.11, reached only through the NAT);
* EC2 over HTTPS on 127.0.0.1 of the host namespace (the agent's ``aws.endpoint_url``);
* the lab resolver on 127.0.0.1:53 and the IMDSv2 emulator on 169.254.169.254:80, both in the
  host namespace.

A ThreadedMotoServer on the host namespace's 127.0.0.1 (plain HTTP) is used for seeding only.
The parent drives the process over stdin/stdout, one JSON object per line.

The path oracle (agent/oracle.py): real S3 evaluates the oracle bucket policy against the request
context, in which ``aws:SourceVpce`` / ``aws:SourceVpc`` are present only for requests that came
through that VPC endpoint (IAM User Guide, "AWS global condition context keys"). moto ignores
policy conditions (a conditional Deny becomes unconditional), so the policy is not stored in moto;
each S3 service namespace's middleware (:func:`_lab_app`) builds the context S3 would see for a
request arriving *that way* and evaluates the same policy with s3_route_agent.engine.iam_policy:

* gateway namespace, client from the VPC (10.0.0.0/16, via the gateway-endpoint route):
  aws:SourceVpce = the gateway endpoint: 200 for ``oracle/<gateway vpce>``, 403 for the others;
* gateway namespace, client = the NAT's public address (the ``0.0.0.0/0 -> NAT`` path to the
  same S3): no aws:SourceVpce: 200 only for ``oracle/public``;
* interface-endpoint ENI namespace: aws:SourceVpce = the interface endpoint: 200 only for
  ``oracle/<interface vpce>``;
* public us-east-1 namespace (reached only through the NAT): 200 only for ``oracle/public``.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import logging
import ssl
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import boto3

from s3_route_agent.engine.hostnames import HostForm, parse_s3_host
from s3_route_agent.devenv.lab import netns
from s3_route_agent.devenv.localenv import moto_patches, world
from s3_route_agent.devenv.localenv.dns_server import LocalDnsServer
from s3_route_agent.devenv.localenv.environment import DEMO_BUCKET, dns_zone_for, instance_metadata_for
from s3_route_agent.devenv.localenv.imds_server import LocalImdsServer
from s3_route_agent.engine.oracle import DEFAULT_PREFIX, PUBLIC_KEY_NAME, oracle_policy
from s3_route_agent.engine.iam_policy import DENY, Request, evaluate

logger = logging.getLogger(__name__)

S3_PORT = 443
SERVED_BY_HEADER = "x-lab-served-by"
ORACLE_BUCKET = DEMO_BUCKET
VPC_CIDR = ipaddress.ip_network("10.0.0.0/16")
# How a request reaches each S3 service namespace, as (vpce id, vpc id) S3 would put in the
# request context; None: no endpoint (see the module docstring).
Arrival = Callable[[str], "tuple[str, str] | None"]


class LabImdsServer(LocalImdsServer):
    """The IMDSv2 emulator on 169.254.169.254, allowed only inside a lab namespace.

    LocalImdsServer binds loopback only (it also runs in the root namespace); here the link-local
    address is on the lab host namespace's ``lo``, where the agent expects IMDS.
    """

    def __init__(self, metadata: Any, lab_netns: str) -> None:
        """Prepare the emulator for ``metadata``; ``lab_netns`` is the namespace it must run in."""
        super().__init__(metadata, host="127.0.0.1", port=80)
        own = Path("/proc/thread-self/ns/net").stat().st_ino
        if Path(netns.NETNS_DIR, lab_netns).stat().st_ino != own:
            raise netns.LabSafetyError("169.254.169.254 is served only inside the lab host namespace")
        self._host = netns.IMDS_ADDRESS


def _bucket_and_key(environ: dict[str, Any]) -> tuple[str | None, str]:
    """The bucket and key of an S3 request, virtual-hosted or path style."""
    path = environ.get("PATH_INFO", "").lstrip("/")
    bucket = parse_s3_host(environ.get("HTTP_HOST", "").split(":")[0]).bucket
    if bucket:
        return bucket, path
    first, _, rest = path.partition("/")
    return (first or None), rest


def _oracle_denial(environ: dict[str, Any], node: str, arrival: Arrival,
                   policy: dict[str, Any]) -> bool:
    """True when S3 would refuse this oracle GET under ``policy`` for a request arriving so."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return False
    bucket, key = _bucket_and_key(environ)
    if bucket != ORACLE_BUCKET or not key.startswith(DEFAULT_PREFIX):
        return False
    remote = environ.get("REMOTE_ADDR", "")
    via = arrival(remote)
    context = ({"aws:SourceVpce": via[0], "aws:SourceVpc": via[1]} if via
               else {"aws:SourceIp": remote})
    decision = evaluate(policy, Request("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", None,
                                        context))
    logger.info("oracle %s %s from %s at %s: %s", bucket, key, remote, node, decision.effect)
    return decision.effect == DENY


_ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                  b"<Message>Access Denied</Message><RequestId>LABORACLE</RequestId></Error>")


def _lab_app(app: Callable[..., Any], node: str, arrival: Arrival | None = None,
             policy: dict[str, Any] | None = None) -> Callable[..., Any]:
    """WSGI wrapper: vpce names become path/virtual regional names moto routes; tag the node;
    answer oracle GETs as S3 would for a request arriving at this node (module docstring).

    moto dispatches S3 by Host; an interface-endpoint name (``[b.]bucket.vpce-….s3.R.vpce…``)
    is an S3 name to AWS but not to moto, so it is rewritten to ``[b.]s3.R.amazonaws.com``.
    """
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        host = environ.get("HTTP_HOST", "")
        form = parse_s3_host(host)
        if form.form is HostForm.VPCE and form.region:
            regional = f"s3.{form.region}.amazonaws.com"
            environ["HTTP_HOST"] = f"{form.bucket}.{regional}" if form.bucket else regional

        def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            return start_response(status, headers + [(SERVED_BY_HEADER, node)], *rest)
        if arrival is not None and policy is not None and \
                _oracle_denial(environ, node, arrival, policy):
            body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else _ACCESS_DENIED
            start("403 Forbidden", [("Content-Type", "application/xml"),
                                    ("Content-Length", str(len(body))),
                                    ("x-amz-request-id", "LABORACLE")])
            return [body]
        return app(environ, start)
    return wrapped


class LabAws:
    """Everything the lab serves from this process (see the module docstring)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        """``spec``: namespaces by role, the work directory and the private-DNS setting."""
        self.spec = spec
        self.workdir = Path(spec["workdir"])
        self.servers: list[Any] = []
        self.moto = world.start_moto_server()
        self.ids = world.seed_world(self.moto.endpoint_url, private_dns=spec.get("private_dns", False))
        self._s3 = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing",
            region_name=world.REGION).client("s3", endpoint_url=self.moto.endpoint_url)
        world.ensure_bucket(self.moto.endpoint_url, DEMO_BUCKET)
        endpoints = (self.ids.gateway_endpoint_id, self.ids.interface_endpoint_id)
        self.oracle_policy = oracle_policy(ORACLE_BUCKET, endpoints)
        for name in (*endpoints, PUBLIC_KEY_NAME):
            self._s3.put_object(Bucket=ORACLE_BUCKET, Key=f"{DEFAULT_PREFIX}{name}",
                                Body=f"oracle {name}\n".encode())
        self.ca_path, self._context = self._tls()
        self.dns: LocalDnsServer | None = None
        self.imds: LabImdsServer | None = None
        self.ec2_port = 0

    def _tls(self) -> tuple[str, ssl.SSLContext]:
        """A lab CA and one server certificate for every S3 name the lab serves."""
        import trustme  # test/demo dependency only

        ca = trustme.CA(organization_name="s3-route-agent lab CA")
        names = ["127.0.0.1", "s3.amazonaws.com", "*.s3.amazonaws.com",
                 f"s3.{world.REGION}.amazonaws.com", f"*.s3.{world.REGION}.amazonaws.com",
                 "s3.us-east-1.amazonaws.com", "*.s3.us-east-1.amazonaws.com",
                 "s3-1-w.amazonaws.com"]
        for dns_name in self.ids.interface_endpoint_dns_names:
            base = dns_name.removeprefix("*.")
            names += [f"*.{base}", f"*.bucket.{base}"]
        cert = ca.issue_cert(*names)
        ca_path = self.workdir / "lab-ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return str(ca_path), context

    def _arrival(self, node: str) -> Arrival:
        """What S3 would see as the request's VPC endpoint at ``node`` (module docstring)."""
        gateway = (self.ids.gateway_endpoint_id, self.ids.vpc_id)
        interface = (self.ids.interface_endpoint_id, self.ids.vpc_id)

        def arrival(remote: str) -> tuple[str, str] | None:
            if node == "s3-interface-endpoint":
                return interface
            if node == "s3-gateway-eu-west-1":
                try:
                    inside = ipaddress.ip_address(remote) in VPC_CIDR
                except ValueError:
                    inside = False
                return gateway if inside else None    # from the NAT's public address: public
            return None                                # us-east-1 S3, only through the NAT
        return arrival

    def _serve(self, netns_name: str | None, host: str, port: int, node: str) -> int:
        """Serve moto over HTTPS on host:port inside ``netns_name``; returns the port."""
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        s3_node = node.startswith("s3-")
        app = _lab_app(DomainDispatcherApplication(create_backend_app), node,
                       self._arrival(node) if s3_node else None,
                       self.oracle_policy if s3_node else None)
        if netns_name:
            with netns.entered(netns_name):
                server = make_server(host, port, app, threaded=True, ssl_context=self._context)
        else:
            server = make_server(host, port, app, threaded=True, ssl_context=self._context)
        threading.Thread(target=server.serve_forever, daemon=True, name=f"lab-{node}").start()
        self.servers.append(server)
        return int(server.server_address[1])

    def start(self) -> dict[str, Any]:
        """Start every listener; returns what the parent needs to know."""
        ns = self.spec["netns"]
        self._serve(ns["s3gw"], "0.0.0.0", S3_PORT, "s3-gateway-eu-west-1")
        self._serve(ns["eni"], "0.0.0.0", S3_PORT, "s3-interface-endpoint")
        self._serve(ns["s3us"], "0.0.0.0", S3_PORT, "s3-public-us-east-1")
        self.ec2_port = self._serve(None, "127.0.0.1", 0, "ec2")
        self.dns = LocalDnsServer(dns_zone_for(self.ids), port=53).start()
        self.imds = LabImdsServer(instance_metadata_for(self.ids), ns["host"]).start()
        return {"ready": True, "ids": self.ids.to_dict(), "ca_path": self.ca_path,
                "ec2_endpoint": f"https://127.0.0.1:{self.ec2_port}",
                "moto_http": self.moto.endpoint_url}

    def command(self, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out one control command from the parent."""
        cmd = request.get("cmd")
        if cmd == "remove_gateway_route":
            world.remove_gateway_route(self.moto.endpoint_url, self.ids)
        elif cmd == "restore_gateway_route":
            world.restore_gateway_route(self.moto.endpoint_url, self.ids)
        elif cmd == "set_private_dns":
            value = bool(request["value"])
            endpoint = moto_patches.ec2_backend(world.REGION).vpc_end_points[
                self.ids.interface_endpoint_id]
            endpoint.private_dns_enabled = value
            options = dict(getattr(endpoint, "dns_options", None) or {})
            options["PrivateDnsOnlyForInboundResolverEndpoint"] = False
            endpoint.dns_options = options
            self.ids = replace(self.ids, private_dns=value)
            assert self.dns is not None
            self.dns.records = dns_zone_for(self.ids)
        elif cmd == "set_block_public_access":
            # What EC2 says (moto has no BPA: moto_patches keeps it); the lab NAT drops the
            # packets themselves (s3_route_agent.devenv.lab.nat, SIGUSR1).
            mode = str(request["mode"])
            if mode == "off":
                moto_patches.clear_block_public_access(world.REGION)
            else:
                moto_patches.set_block_public_access(world.REGION, mode)
        elif cmd == "list_objects":
            listed = self._s3.list_objects_v2(Bucket=request["bucket"],
                                              Prefix=request.get("prefix", ""))
            return {"ok": True, "keys": [o["Key"] for o in listed.get("Contents", [])]}
        elif cmd == "put_object":
            self._s3.put_object(Bucket=request["bucket"], Key=request["key"], Body=b"stale")
            age = float(request.get("age_seconds", 0))
            if age:
                from moto.backends import get_backend
                key = get_backend("s3")[world.ACCOUNT_ID]["global"].buckets[
                    request["bucket"]].keys[request["key"]]
                key.last_modified = key.last_modified - _dt.timedelta(seconds=age)
        else:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        return {"ok": True}

    def stop(self) -> None:
        """Stop every listener."""
        for server in self.servers:
            server.shutdown()
        if self.dns:
            self.dns.stop()
        if self.imds:
            self.imds.stop()
        self.moto.stop()


def main(argv: list[str] | None = None) -> int:
    """Start the lab's AWS side from SPEC.json, then answer commands on stdin until EOF."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    spec = json.loads(Path(argv[0]).read_text())
    lab = LabAws(spec)
    print(json.dumps(lab.start()), flush=True)
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            if request.get("cmd") == "stop":
                break
            try:
                reply = lab.command(request)
            except Exception as exc:  # noqa: BLE001 - reported to the parent, one line
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(reply), flush=True)
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
