"""Would a normal boto3 client on this host send a target's S3 traffic through a proxy? Pure.

The rules are botocore's (botocore 1.44 ``endpoint.EndpointCreator._get_proxies`` and
``utils.get_environ_proxies``), which rest on the standard library's:

* ``Config(proxies=...)`` (here: the config's ``proxies`` section), when given, is used as is:
  NO_PROXY is not consulted at all.
* Otherwise the environment: ``getproxies_environment`` takes every ``*_proxy`` variable, any
  case, the lowercase one winning over the uppercase one; ``proxy_bypass_environment`` then
  exempts the endpoint's host when NO_PROXY is ``*`` or one of its comma-separated entries equals
  the host (with or without the port) or is a dot-bounded suffix of it (a leading dot is ignored).
  No CIDR matching: an address entry exempts only that exact literal.
* The check is made once per client against the **endpoint URL** (``https://s3.REGION…``), not
  the virtual-hosted bucket name, and the proxy is chosen by the URL's scheme (``https``).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyDecision:
    """Whether traffic to an endpoint URL goes through a proxy, and why."""

    endpoint_url: str
    proxy_url: str | None            # None: direct
    proxy_host: str | None = None
    proxy_port: int | None = None
    source: str = "none"             # "environment", "config" or "none"
    bypassed_by: str | None = None   # the NO_PROXY entry that exempted the host

    @property
    def proxied(self) -> bool:
        """True when the traffic goes through the proxy."""
        return self.proxy_url is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"endpoint_url": self.endpoint_url, "proxy_url": _redact(self.proxy_url),
                "proxy_host": self.proxy_host, "proxy_port": self.proxy_port,
                "source": self.source, "bypassed_by": self.bypassed_by}


def _redact(url: str | None) -> str | None:
    """The URL without user:password (never put proxy credentials in a report)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``urllib.request.getproxies_environment`` over ``environ``: lowercase names win."""
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        lname = name.lower()
        if value and lname.endswith("_proxy"):
            proxies[lname[:-6]] = value
    if "REQUEST_METHOD" in environ:   # CVE-2016-1000110: CGI scripts ignore HTTP_PROXY
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):   # the lowercase spelling, second pass
            lname = name.lower()
            if value:
                proxies[lname[:-6]] = value
            else:
                proxies.pop(lname[:-6], None)
    return proxies


def no_proxy_match(netloc: str, no_proxy: str | None) -> str | None:
    """The NO_PROXY entry that exempts ``netloc`` (``host[:port]``), or None.

    ``urllib.request.proxy_bypass_environment`` semantics (Python 3.11).
    """
    if not no_proxy:
        return None
    if no_proxy.strip() == "*":
        return "*"
    host = netloc.lower()
    hostonly = host
    if host.startswith("["):
        hostonly = host.split("]", 1)[0] + "]"
    elif host.count(":") == 1:
        hostonly = host.split(":", 1)[0]
    for entry in no_proxy.split(","):
        name = entry.strip()
        if not name:
            continue
        name = name.lstrip(".").lower()
        if hostonly == name or host == name:
            return entry.strip()
        dotted = "." + name
        if hostonly.endswith(dotted) or host.endswith(dotted):
            return entry.strip()
    return None


def _fix_proxy_url(url: str) -> str:
    """botocore ``ProxyConfiguration._fix_proxy_url``: a bare host:port means http://."""
    if url.startswith(("http:", "https:")):
        return url
    if url.startswith("//"):
        return "http:" + url
    return "http://" + url


def decide_proxy(endpoint_url: str, environ: Mapping[str, str],
                 config_proxies: Mapping[str, str | None] | None = None) -> ProxyDecision:
    """Where botocore would send requests for ``endpoint_url``: a proxy, or direct."""
    scheme = urlsplit(endpoint_url).scheme or "https"
    netloc = urlsplit(endpoint_url).netloc
    configured = {k: v for k, v in (config_proxies or {}).items() if v}
    if configured:
        chosen, source, bypass = configured.get(scheme), "config", None
    else:
        proxies = environment_proxies(environ)
        bypass = no_proxy_match(netloc, proxies.get("no"))
        chosen = None if bypass else proxies.get(scheme)
        source = "environment"
    if not chosen:
        return ProxyDecision(endpoint_url=endpoint_url, proxy_url=None,
                             source=source if bypass else "none", bypassed_by=bypass)
    url = _fix_proxy_url(chosen)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ProxyDecision(endpoint_url=endpoint_url, proxy_url=url, proxy_host=parts.hostname,
                         proxy_port=port, source=source)


def proxy_address(decision: ProxyDecision) -> str | None:
    """The proxy host when it is an IP literal (else the caller resolves it)."""
    if not decision.proxy_host:
        return None
    try:
        return str(ipaddress.ip_address(decision.proxy_host.strip("[]")))
    except ValueError:
        return None
