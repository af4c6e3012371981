"""boto3 clients with the agent's timeouts, retry mode and user agent.

Every AWS client the agent uses comes from :func:`make_client`, so timeouts and retries are the
same everywhere and every request carries ``s3-route-agent/VERSION`` in its User-Agent (which
makes the agent's calls easy to find in CloudTrail).
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.config import Config

from s3_route_agent import __version__

logger = logging.getLogger(__name__)

USER_AGENT_EXTRA = f"s3-route-agent/{__version__}"
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 3


def client_config(connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                  read_timeout: float = DEFAULT_READ_TIMEOUT,
                  max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Config:
    """The botocore Config every agent client uses.

    ``max_attempts`` counts the first try (botocore's ``total_max_attempts``; its older
    ``max_attempts`` retry key counts retries only — botocore.config.Config docstring). The
    "standard" retry mode retries throttling and transient errors with jittered exponential
    backoff and a client-side retry quota (AWS SDKs and Tools reference guide, "Retry behavior").
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    return Config(
        retries={"mode": "standard", "total_max_attempts": int(max_attempts)},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra=USER_AGENT_EXTRA,
    )


def make_client(service: str, region: str, endpoint_url: str | None = None, *,
                connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                read_timeout: float = DEFAULT_READ_TIMEOUT,
                max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                session: boto3.session.Session | None = None) -> Any:
    """A boto3 client for ``service`` in ``region`` from a fresh (or the given) Session.

    ``endpoint_url`` points the client elsewhere (the local moto server in tests and the demo);
    credentials come from the ordinary chain (environment, shared files, instance role).
    """
    session = session or boto3.session.Session()
    logger.debug("creating %s client for %s (endpoint %s)", service, region,
                 endpoint_url or "default")
    return session.client(
        service, region_name=region, endpoint_url=endpoint_url,
        config=client_config(connect_timeout, read_timeout, max_attempts))


def make_s3_client_for_endpoint(endpoint_url: str, signing_region: str, addressing_style: str,
                                timeout: float,
                                session: boto3.session.Session | None = None) -> Any:
    """An S3 client as a normal boto3 user would build it for one hostname (the test transfer
    and the oracle reads): that endpoint URL and addressing style, one attempt, ``timeout`` for
    connect and read. Proxies come from the environment exactly as botocore applies them."""
    session = session or boto3.session.Session()
    return session.client(
        "s3", region_name=signing_region, endpoint_url=endpoint_url,
        config=Config(s3={"addressing_style": addressing_style},
                      retries={"mode": "standard", "total_max_attempts": 1},
                      connect_timeout=timeout, read_timeout=timeout,
                      user_agent_extra=USER_AGENT_EXTRA))


def make_ec2_client(region: str, endpoint_url: str | None = None,
                    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                    read_timeout: float = DEFAULT_READ_TIMEOUT,
                    max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Any:
    """An EC2 client for the inventory collector (see :func:`make_client`)."""
    return make_client("ec2", region, endpoint_url, connect_timeout=connect_timeout,
                       read_timeout=read_timeout, max_attempts=max_attempts)
