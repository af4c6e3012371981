"""AWS clients with the agent's timeouts, retry mode and user agent (botocore's own clients;
boto3's, as a user builds them, for the test transfer).

Every AWS client the agent uses comes from :func:`make_client`, so timeouts and retries are the
same everywhere and every request carries ``s3-route-agent/VERSION`` in its User-Agent (which
makes the agent's calls easy to find in CloudTrail).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from s3_route_agent import __version__

if TYPE_CHECKING:  # boto3 and botocore are imported when a client is first built (a warm run
    import boto3   # builds none, and importing them costs about 150 ms)
    from botocore.config import Config

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
    from botocore.config import Config
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
                session: Any = None) -> Any:
    """A client for ``service`` in ``region`` from a fresh (or the given) session.

    The client is botocore's own (what a boto3 client is, without boto3's resource layer and
    its injected transfer methods, which the agent does not use): building it this way saves
    importing boto3 and s3transfer, about a sixth of a cold run. ``session`` may be a botocore
    Session or a boto3 one. ``endpoint_url`` points the client elsewhere (the local moto server
    in tests and the demo); credentials come from the ordinary chain (environment, shared files,
    instance role), as for boto3.
    """
    logger.debug("creating %s client for %s (endpoint %s)", service, region,
                 endpoint_url or "default")
    config = client_config(connect_timeout, read_timeout, max_attempts)
    if session is not None and not hasattr(session, "create_client"):   # a boto3 Session
        return session.client(service, region_name=region, endpoint_url=endpoint_url,
                              config=config)
    if session is None:
        import botocore.session
        session = botocore.session.get_session()
    return session.create_client(service, region_name=region, endpoint_url=endpoint_url,
                                 config=config)


def make_s3_client_for_endpoint(endpoint_url: str, signing_region: str, addressing_style: str,
                                timeout: float,
                                session: boto3.session.Session | None = None) -> Any:
    """An S3 client as a normal boto3 user would build it for one hostname (the test transfer
    and the oracle reads): that endpoint URL and addressing style, one attempt, ``timeout`` for
    connect and read. Proxies come from the environment exactly as botocore applies them."""
    import boto3.session
    from botocore.config import Config
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


def botocore_errors() -> tuple[type[Exception], ...]:
    """botocore's two exception roots, ``(BotoCoreError, ClientError)``, for ``except`` clauses.

    An ``except`` expression is evaluated only when an exception is being handled, and by then
    a client call has imported botocore, so modules that catch these need not import botocore
    at import time (a warm ``check`` builds no client and never imports it).
    """
    from botocore.exceptions import BotoCoreError, ClientError
    return (BotoCoreError, ClientError)


def client_error() -> type[Exception]:
    """botocore's ``ClientError`` (an AWS service's error answer), for an ``except`` clause."""
    from botocore.exceptions import ClientError
    return ClientError


def botocore_error() -> type[Exception]:
    """botocore's ``BotoCoreError`` (no answer: network, credentials, parsing), for ``except``."""
    from botocore.exceptions import BotoCoreError
    return BotoCoreError


def operation_method(client: Any, operation: str) -> Any:
    """The client method of an API ``operation`` ("DescribeRouteTables" ->
    ``describe_route_tables``), botocore's own name mapping (imported with the client)."""
    from botocore import xform_name
    return getattr(client, xform_name(operation))
