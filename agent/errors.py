"""Typed errors: each carries a ``kind`` a machine can branch on and a one-line ``message``."""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)


class AgentError(Exception):
    """Base of the agent's errors: ``kind`` for machines, ``message`` (one line) for people."""

    def __init__(self, kind: str, message: str) -> None:
        """Keep the kind and a single-line message."""
        self.kind = kind
        self.message = " ".join(str(message).split())
        super().__init__(self.message)


class ConfigError(AgentError):
    """The configuration is unreadable or invalid (exit UNKNOWN; systemd must not restart)."""


class IdentityError(AgentError):
    """The host's identity (region, VPC, subnet) could not be learned from IMDS or config."""


class InventoryError(AgentError):
    """The EC2 inventory could not be fetched.

    ``kind`` is one of :data:`INVENTORY_ERROR_KINDS`; ``operation`` names the EC2 API call that
    failed (``DescribeRouteTables``, ...).
    """

    def __init__(self, kind: str, message: str, operation: str | None = None) -> None:
        """Keep the kind, a one-line message and the failed operation."""
        if kind not in INVENTORY_ERROR_KINDS:
            raise ValueError(f"unknown inventory error kind {kind!r}")
        super().__init__(kind, message)
        self.operation = operation


INVENTORY_ERROR_KINDS: tuple[str, ...] = (
    "no_credentials", "access_denied", "throttled", "unreachable", "not_found", "api_error")

# EC2 API error codes, from the EC2 API reference "Error codes for the Amazon EC2 API".
_ACCESS_DENIED_CODES = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException",
                                  "AuthFailure"})
# RequestLimitExceeded is EC2's throttling code ("Request throttling for the Amazon EC2 API");
# Throttling / ThrottlingException are what other AWS query/JSON services answer.
_THROTTLED_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})
# Access key ids (AKIA... long-term, ASIA... temporary) and URL user-info (a proxy URL may carry
# "user:password@"): neither may reach a log line or a report.
_ACCESS_KEY_RE = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b")
_URL_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]+@")
_MAX_DETAIL = 200


def one_line_detail(text: str) -> str:
    """One line, no access key ids, no URL credentials, bounded length."""
    line = " ".join(str(text).split())
    line = _ACCESS_KEY_RE.sub("[redacted]", line)
    line = _URL_USERINFO_RE.sub("[redacted]@", line)
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."


def inventory_error_from(exc: Exception, operation: str) -> InventoryError:
    """Map a botocore exception raised by EC2 ``operation`` to an :class:`InventoryError`.

    The message is one line, names the operation and never carries credentials (botocore's
    exception text for a proxy failure includes the proxy URL, which may embed a password).
    """
    # Imported here so that importing s3_route_agent.errors stays cheap for modules without AWS calls.
    from botocore import exceptions as bce

    api = f"EC2 {operation}"
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError,
                        bce.CredentialRetrievalError)):
        return InventoryError(
            "no_credentials",
            f"{api}: no usable AWS credentials ({one_line_detail(str(exc))}; attach an instance role or "
            "configure credentials)", operation)
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(error.get("Code") or "Unknown")
        detail = one_line_detail(str(error.get("Message") or ""))
        if code in _ACCESS_DENIED_CODES:
            # The message of UnauthorizedOperation may carry an encoded authorization-failure
            # blob (decodable with sts:DecodeAuthorizationMessage); it is long and adds nothing
            # an operator needs here, so only the code is kept.
            return InventoryError(
                "access_denied",
                f"{api} denied: {code} (add ec2:{operation} to the instance role)", operation)
        if code in _THROTTLED_CODES:
            return InventoryError(
                "throttled",
                f"{api} throttled: {code} (the account's EC2 request budget is shared by every "
                "host; retry later or lengthen the cache TTL)", operation)
        if code.endswith("NotFound") or code.endswith(".Malformed"):
            # InvalidVpcID.NotFound, InvalidSubnetID.NotFound, InvalidPrefixListID.NotFound,
            # InvalidVpcEndpointId.NotFound, ...; a malformed id means the same to an operator:
            # the configured VPC/subnet does not exist.
            return InventoryError("not_found", f"{api}: {code}: {detail}".rstrip(": "), operation)
        return InventoryError("api_error", f"{api} failed: {code}: {detail}".rstrip(": "),
                              operation)
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectTimeoutError,
                        bce.ReadTimeoutError, bce.ConnectionClosedError, bce.ConnectionError)):
        return InventoryError("unreachable", f"{api}: EC2 API unreachable: {one_line_detail(str(exc))}",
                              operation)
    return InventoryError("api_error",
                          f"{api} failed: {type(exc).__name__}: {one_line_detail(str(exc))}", operation)
