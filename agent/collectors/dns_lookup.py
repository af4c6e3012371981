"""DNS collector: resolve a host's A and AAAA records and say exactly what happened.

Every DNS outcome becomes data: addresses with their TTLs, the CNAME chain, which nameserver
answered, how long it took, or a failure of a distinct kind (NXDOMAIN, no data, timeout,
SERVFAIL, REFUSED, no nameservers, other error) with a one-line message. Resolution problems
never raise.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.inet
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.rrset

from s3_route_agent.engine.model import DnsAnswer, DnsFailure, ResolvedAddress

logger = logging.getLogger(__name__)

AddressFamily = Literal["ipv4", "ipv6"]
"""Address family of a resolved address."""

DnsFailureKind = Literal[
    "nxdomain", "no_data", "timeout", "servfail", "refused", "no_nameservers", "error"
]
"""Kinds of DNS failure the collector tells apart."""


@dataclass(frozen=True)
class DnsSettings:
    """How to resolve: nameservers (empty = the system's /etc/resolv.conf), port, limits."""

    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout_seconds: float = 2.0
    query_ipv6: bool = True


def make_resolver(settings: DnsSettings) -> dns.resolver.Resolver:
    """Build a dnspython stub resolver for *settings*.

    With no nameservers the system configuration is read; when it names no usable nameserver
    the resolver gets an empty list, so lookups report "no_nameservers" instead of raising.
    Raises ValueError for an explicit nameserver that is not an IP address or HTTPS URL.
    """
    if settings.nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.port = settings.port
        resolver.nameservers = list(settings.nameservers)
    else:
        try:
            resolver = dns.resolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration as error:
            logger.warning("no usable system DNS configuration: %s", error)
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = []
    resolver.timeout = settings.timeout_seconds
    resolver.lifetime = settings.timeout_seconds
    resolver.cache = None
    return resolver


@dataclass(frozen=True)
class _TypeOutcome:
    """Result of one A or AAAA query."""

    rrset: dns.rrset.RRset | None
    minimum_ttl: int
    cname_chain: tuple[str, ...]
    nameserver: str | None
    failure: DnsFailure | None


def address_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address when it is one (``10.0.2.50``, ``2001:db8::1``,
    ``[2001:db8::1]``), else None."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def resolve_host(
    resolver: dns.resolver.Resolver,
    host: str,
    clock: Callable[[], float] = time.monotonic,
    query_ipv6: bool = True,
) -> DnsAnswer:
    """Resolve *host* (A, then AAAA when *query_ipv6*) and describe the outcome; never raises.

    The name is always queried as absolute (no search list). A hard failure of the A query
    (NXDOMAIN, timeout, SERVFAIL, REFUSED, ...) is the answer; AAAA is asked only when A
    succeeded or had no data. A host with A records and an AAAA problem still succeeds (the
    AAAA problem is logged). "no_data" means the name exists with neither A nor AAAA.
    """
    literal = address_literal(host)
    if literal is not None:
        # An IP address is judged as that address: asking DNS for it would send a query for a
        # "name" like 10.0.2.50 (and answer NXDOMAIN or, worse, whatever a search list finds).
        family = "ipv4" if literal.version == 4 else "ipv6"
        return DnsAnswer(host=host, addresses=(ResolvedAddress(str(literal), family, 0),),
                         cname_chain=(), nameserver=None, latency_ms=0.0)
    started = clock()
    try:
        if not host.strip().rstrip("."):
            raise ValueError("the name is empty")
        qname = dns.name.from_text(host.strip())
    except (dns.exception.DNSException, ValueError) as error:
        return DnsAnswer(
            host=host,
            addresses=(),
            cname_chain=(),
            nameserver=None,
            latency_ms=0.0,
            failure=DnsFailure("error", f"invalid host name {host!r}: {error}"),
        )
    ipv4 = _query_type(resolver, qname, dns.rdatatype.A)
    outcomes = [ipv4]
    if ipv4.failure is None and query_ipv6:
        ipv6 = _query_type(resolver, qname, dns.rdatatype.AAAA)
        if ipv6.failure is not None and ipv4.rrset is not None:
            logger.warning(
                "AAAA lookup failed for %s, using A only: %s", host, ipv6.failure.message
            )
        else:
            outcomes.append(ipv6)
    latency_ms = (clock() - started) * 1000.0

    addresses = tuple(
        ResolvedAddress(
            ip=str(ipaddress.ip_address(rdata.address)),
            family="ipv4" if outcome.rrset.rdtype == dns.rdatatype.A else "ipv6",
            ttl=outcome.minimum_ttl,
        )
        for outcome in outcomes
        if outcome.rrset is not None
        for rdata in outcome.rrset
    )
    failure = next((outcome.failure for outcome in outcomes if outcome.failure), None)
    if failure is None and not addresses:
        asked = "A or AAAA" if query_ipv6 else "A"
        failure = DnsFailure(
            "no_data",
            f"DNS name {_display(qname)} exists but has no {asked} records"
            f" (answered by {ipv4.nameserver or _nameserver_list(resolver)})",
        )
    cname_chain = max((outcome.cname_chain for outcome in outcomes), key=len)
    nameserver = next((outcome.nameserver for outcome in outcomes if outcome.nameserver), None)
    return DnsAnswer(
        host=host,
        addresses=addresses,
        cname_chain=cname_chain,
        nameserver=nameserver,
        latency_ms=latency_ms,
        failure=failure,
    )


def _query_type(
    resolver: dns.resolver.Resolver, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> _TypeOutcome:
    """Ask for one record type and turn every DNS outcome into a :class:`_TypeOutcome`."""
    type_text = dns.rdatatype.to_text(rdtype)
    name_text = _display(qname)
    try:
        answer = resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN as error:
        return _TypeOutcome(
            rrset=None,
            minimum_ttl=0,
            cname_chain=_chain_from_nxdomain(error, qname),
            nameserver=_sole_nameserver(resolver),
            failure=DnsFailure(
                "nxdomain",
                f"DNS name {name_text} does not exist (NXDOMAIN"
                f" from {_sole_nameserver(resolver) or _nameserver_list(resolver)})",
            ),
        )
    except dns.resolver.LifetimeTimeout:
        return _failed(
            "timeout",
            f"DNS timeout after {resolver.lifetime:.1f} s asking {_nameserver_list(resolver)}"
            f" for {name_text} {type_text}",
        )
    except dns.resolver.NoNameservers as error:
        return _classify_no_nameservers(resolver, error, name_text, type_text)
    except dns.exception.DNSException as error:
        return _failed(
            "error",
            f"DNS error asking {_nameserver_list(resolver)} for {name_text} {type_text}:"
            f" {_one_line(str(error))}",
        )
    chaining = answer.chaining_result
    return _TypeOutcome(
        rrset=chaining.answer,
        minimum_ttl=chaining.minimum_ttl,
        cname_chain=_chain_names(chaining.cnames),
        nameserver=_endpoint(answer.nameserver, answer.port),
        failure=None,
    )


def _classify_no_nameservers(
    resolver: dns.resolver.Resolver,
    error: dns.resolver.NoNameservers,
    name_text: str,
    type_text: str,
) -> _TypeOutcome:
    """Tell SERVFAIL, REFUSED, "no nameservers" and other errors apart from dnspython's trace.

    dnspython reports each server's failure as ``(server, tcp, port, error, response)``; a
    failing rcode appears as its text ("SERVFAIL", "REFUSED"), I/O problems as exceptions.
    """
    errors = list(error.kwargs.get("errors") or [])
    if not errors:
        configured = _nameserver_list(resolver)
        return _failed(
            "no_nameservers",
            f"no DNS nameservers to ask for {name_text} {type_text}"
            + ("" if configured == "no nameservers" else f" (configured: {configured})"),
        )
    labels = _nameserver_labels(resolver)
    reports = [
        (labels.get(str(server), str(server)), problem)
        for server, _tcp, _port, problem, _response in errors
    ]
    rcodes = {problem for _server, problem in reports if isinstance(problem, str)}
    every_problem_is_rcode = all(isinstance(problem, str) for _server, problem in reports)
    servers = ", ".join(dict.fromkeys(server for server, _problem in reports))
    last_server = reports[-1][0]
    if every_problem_is_rcode and rcodes == {"SERVFAIL"}:
        return _failed(
            "servfail",
            f"DNS SERVFAIL from {servers} for {name_text} {type_text}",
            nameserver=last_server,
        )
    if every_problem_is_rcode and rcodes == {"REFUSED"}:
        return _failed(
            "refused",
            f"DNS REFUSED by {servers} for {name_text} {type_text}",
            nameserver=last_server,
        )
    details = "; ".join(
        f"{server} answered {_one_line(str(problem))}" for server, problem in reports
    )
    return _failed("error", f"DNS failed for {name_text} {type_text}: {details}")


def _failed(kind: DnsFailureKind, message: str, nameserver: str | None = None) -> _TypeOutcome:
    """A query outcome carrying only a failure."""
    return _TypeOutcome(
        rrset=None,
        minimum_ttl=0,
        cname_chain=(),
        nameserver=nameserver,
        failure=DnsFailure(kind, message),
    )


def _chain_names(cnames: list[dns.rrset.RRset]) -> tuple[str, ...]:
    """The CNAME targets in the order they were followed."""
    return tuple(_display(rrset[0].target) for rrset in cnames)


def _chain_from_nxdomain(error: dns.resolver.NXDOMAIN, qname: dns.name.Name) -> tuple[str, ...]:
    """The CNAME chain that led to a name which does not exist (empty when there was none)."""
    try:
        response = error.response(qname)
        if not isinstance(response, dns.message.QueryMessage):
            return ()
        return _chain_names(response.resolve_chaining().cnames)
    except (KeyError, dns.exception.DNSException):
        return ()


def _display(name: dns.name.Name) -> str:
    """A name as reported: lower case, without the final dot."""
    return name.to_text(omit_final_dot=True).lower()


def _endpoint(address: str | None, port: int | None) -> str | None:
    """``"ip:port"`` of the server that answered; None when unknown, a DoH URL as it is."""
    if address is None:
        return None
    if port is None or address.startswith("https://"):
        return address
    return _host_port(address, port)


def _host_port(address: str, port: int) -> str:
    """``"ip:port"``, or ``"[ip]:port"`` for IPv6."""
    if ":" in address:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def _nameserver_labels(resolver: dns.resolver.Resolver) -> dict[str, str]:
    """Map each configured nameserver, as dnspython names it in error traces, to ``ip:port``.

    dnspython's traces name a server ``Do53:ip@port``; IP entries given as text get the port
    from ``nameserver_ports`` or ``resolver.port``, exactly as dnspython resolves them.
    """
    labels: dict[str, str] = {}
    for entry in resolver.nameservers:
        if isinstance(entry, dns.nameserver.AddressAndPortNameserver):
            labels[str(entry)] = _host_port(entry.address, entry.port)
        elif isinstance(entry, dns.nameserver.Nameserver):
            labels[str(entry)] = str(entry)
        elif dns.inet.is_address(entry):
            port = resolver.nameserver_ports.get(entry, resolver.port)
            labels[str(dns.nameserver.Do53Nameserver(entry, port))] = _host_port(entry, port)
        else:
            labels[entry] = entry
    return labels


def _nameserver_list(resolver: dns.resolver.Resolver) -> str:
    """The configured nameservers as ``ip:port, ...`` for messages."""
    labels = list(_nameserver_labels(resolver).values())
    return ", ".join(labels) if labels else "no nameservers"


def _sole_nameserver(resolver: dns.resolver.Resolver) -> str | None:
    """``ip:port`` of the only configured nameserver, None when there are several or none.

    dnspython's NXDOMAIN exception does not say which server answered; with one server there
    is no doubt.
    """
    labels = list(_nameserver_labels(resolver).values())
    return labels[0] if len(labels) == 1 else None


def _one_line(text: str) -> str:
    """Collapse *text* onto one line."""
    return " ".join(text.split())
