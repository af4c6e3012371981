"""Proxy rules from tables, and against the standard library and botocore as oracles."""

from __future__ import annotations

import urllib.request

import botocore.utils
import pytest

from s3_route_agent.engine.proxy import decide_proxy, environment_proxies, no_proxy_match

REGIONAL = "https://s3.eu-west-1.amazonaws.com"
P = "http://10.0.1.20:3128"

CASES = [
    # (environment, config proxies, endpoint, expected proxy url, expected bypass entry)
    ({}, None, REGIONAL, None, None),
    ({"HTTPS_PROXY": P}, None, REGIONAL, P, None),
    ({"https_proxy": P}, None, REGIONAL, P, None),
    ({"HTTP_PROXY": P}, None, REGIONAL, None, None),                     # https needs HTTPS_PROXY
    ({"HTTPS_PROXY": "10.0.1.20:3128"}, None, REGIONAL, P, None),        # bare host:port -> http://
    ({"HTTPS_PROXY": "http://a:1", "https_proxy": P}, None, REGIONAL, P, None),  # lowercase wins
    ({"HTTPS_PROXY": P, "NO_PROXY": "*"}, None, REGIONAL, None, "*"),
    ({"HTTPS_PROXY": P, "NO_PROXY": "amazonaws.com"}, None, REGIONAL, None, "amazonaws.com"),
    ({"HTTPS_PROXY": P, "NO_PROXY": ".amazonaws.com"}, None, REGIONAL, None, ".amazonaws.com"),
    ({"HTTPS_PROXY": P, "NO_PROXY": "s3.eu-west-1.amazonaws.com"}, None, REGIONAL, None,
     "s3.eu-west-1.amazonaws.com"),
    ({"HTTPS_PROXY": P, "NO_PROXY": "west-1.amazonaws.com"}, None, REGIONAL, P, None),  # not dot-bounded
    ({"HTTPS_PROXY": P, "NO_PROXY": "169.254.169.254, .eu-west-1.amazonaws.com"}, None, REGIONAL,
     None, ".eu-west-1.amazonaws.com"),
    ({"HTTPS_PROXY": P, "NO_PROXY": "198.51.100.0/24"}, None, REGIONAL, P, None),  # no CIDRs
    ({"HTTPS_PROXY": P, "no_proxy": "", "NO_PROXY": "amazonaws.com"}, None, REGIONAL, P, None),
    # botocore Config(proxies=...) replaces the environment; NO_PROXY is not consulted.
    ({"NO_PROXY": "*"}, {"https": P}, REGIONAL, P, None),
    ({"HTTPS_PROXY": "http://other:1"}, {"https": P}, REGIONAL, P, None),
    ({"HTTPS_PROXY": P}, {"http": "http://x:1"}, REGIONAL, None, None),
]


@pytest.mark.parametrize("environ,config,endpoint,proxy,bypass", CASES)
def test_decide_proxy(environ, config, endpoint, proxy, bypass) -> None:
    """The decision for each row of the table."""
    decision = decide_proxy(endpoint, environ, config)
    assert decision.proxy_url == proxy
    assert decision.bypassed_by == bypass
    if proxy:
        assert decision.proxy_host == "10.0.1.20" and decision.proxy_port == 3128


@pytest.mark.parametrize("environ,config,endpoint,proxy,bypass",
                         [c for c in CASES if c[1] is None])
def test_matches_botocore(monkeypatch: pytest.MonkeyPatch, environ, config, endpoint, proxy,
                          bypass) -> None:
    """botocore's own get_environ_proxies agrees on every environment-only row."""
    for name in list(__import__("os").environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    theirs = botocore.utils.get_environ_proxies(endpoint).get("https")
    ours = decide_proxy(endpoint, environ).proxy_url
    fixed = None if theirs is None else (theirs if theirs.startswith("http") else f"http://{theirs}")
    assert ours == fixed


@pytest.mark.parametrize("netloc,no_proxy", [
    ("s3.eu-west-1.amazonaws.com", "amazonaws.com"), ("s3.eu-west-1.amazonaws.com:443", "s3.eu-west-1.amazonaws.com"),
    ("s3.amazonaws.com", ".s3.amazonaws.com"), ("bucket.s3.amazonaws.com", "s3.amazonaws.com"),
    ("10.0.2.50", "10.0.2.50"), ("10.0.2.50", "10.0.2.0/24"), ("example.com", "ample.com"),
    ("example.com", " , example.com "), ("EXAMPLE.com", "example.COM"), ("a.b", "*"),
])
def test_no_proxy_matches_stdlib(netloc: str, no_proxy: str) -> None:
    """no_proxy_match agrees with urllib.request.proxy_bypass_environment."""
    stdlib = bool(urllib.request.proxy_bypass_environment(netloc, {"no": no_proxy}))
    assert (no_proxy_match(netloc, no_proxy) is not None) == stdlib


def test_environment_proxies_matches_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """environment_proxies is getproxies_environment over a given mapping."""
    env = {"HTTPS_PROXY": "http://u:1", "https_proxy": "http://l:2", "NO_PROXY": "a",
           "ftp_proxy": "", "FTP_PROXY": "http://f:3"}
    for name in list(__import__("os").environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert environment_proxies(env) == urllib.request.getproxies_environment()


def test_credentials_never_reported() -> None:
    """A proxy URL's user:password stays out of the report."""
    decision = decide_proxy(REGIONAL, {"HTTPS_PROXY": "http://user:secret@10.0.1.20:3128"})
    assert "secret" not in str(decision.to_dict())
    assert decision.to_dict()["proxy_url"] == "http://10.0.1.20:3128"
