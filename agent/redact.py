"""Keep signatures, credentials and session tokens out of logs and reports.

:func:`redact` rewrites a string; :class:`RedactingFilter` applies it to every log record that
passes a handler (a handler filter sees records propagated from child loggers such as
``botocore.*``; a logger filter would not — Python logging HOWTO, "Filters"). Covered:

* SigV4 query parameters ``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``
  (presigned URLs; S3 user guide, "Authenticating requests: using query parameters"), plain or
  URL-encoded, and SigV2's ``Signature=`` / ``AWSAccessKeyId=``;
* the ``Authorization`` and ``X-Amz-Security-Token`` headers in every form botocore and urllib3
  log them (``'Authorization': b'...'`` in a dict repr, ``Authorization: ...`` on a line);
* botocore's SigV4 debug lines (``Signature:`` followed by the hex signature, the
  ``x-amz-security-token:`` line of the canonical request);
* access key ids (``AKIA``/``ASIA`` + 16) and ``aws_secret_access_key``/``aws_session_token``
  values (ini, env, JSON ``SecretAccessKey``/``SessionToken``/``Token`` as IMDS and STS return).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Query parameters (also inside URL-encoded URLs, where '=' is %3D and '&' is %26).
    (re.compile(r"(?i)((?:X-Amz-(?:Signature|Credential|Security-Token)|Signature|AWSAccessKeyId)"
                r"(?:=|%3D))[^&\s'\"<>,]+"), r"\1" + REDACTED),
    # Header in a Python dict repr, bytes or str value: 'Authorization': b'AWS4-HMAC-SHA256 ...'
    (re.compile(r"(?i)(['\"](?:Authorization|X-Amz-Security-Token|X-Amz-Signature)['\"]\s*:\s*"
                r"b?)(['\"])(?:(?!\2).)*\2"), r"\1\2" + REDACTED + r"\2"),
    # Header on its own line (http.client debug, canonical request): Authorization: AWS4-...
    (re.compile(r"(?im)^(\s*(?:Authorization|x-amz-security-token)\s*:\s*).+$"),
     r"\1" + REDACTED),
    # botocore.auth debug: "Signature:\n<64 hex>" and "Signature=<hex>" inside Authorization.
    (re.compile(r"(?i)(Signature:\s*)[0-9a-f]{16,}"), r"\1" + REDACTED),
    (re.compile(r"(?i)(Signature=)[0-9a-f]{16,}"), r"\1" + REDACTED),
    (re.compile(r"(?i)(Credential=)[^,\s'\"]+"), r"\1" + REDACTED),
    # Secrets as key = value / key: value / "Key": "value".
    (re.compile(r"(?i)((?:aws_secret_access_key|aws_session_token|aws_security_token"
                r"|secret_?access_?key|session_?token)['\"]?\s*[:=]\s*b?['\"]?)"
                r"[^'\"\s,}]+"), r"\1" + REDACTED),
    (re.compile(r"(\"Token\"\s*:\s*\")[^\"]+"), r"\1" + REDACTED),
    # Access key ids: AKIA (long-term) and ASIA (temporary, STS) + 16 upper-case base32 chars.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
)


# One expression that every string any pattern above can change must match: each pattern needs
# one of these words (case-insensitively a superset: "Token" and AKIA/ASIA are case-sensitive
# above). Most strings of a report carry none, so they pass one search instead of nine
# substitutions (200 targets: 145 ms -> 30 ms, identical output; tests/test_redact.py compares).
_GATE_WORDS = ("signature", "credential", "authorization", "awsaccesskeyid", "secret", "token",
               "akia", "asia")
_GATE = re.compile("(?i)" + "|".join(_GATE_WORDS))


def _may_hold_secret(text: str) -> bool:
    """True when ``text`` holds a gate word. ASCII text (nearly all) is lower-cased and searched
    for each word (a 14 KB report: 0.2 ms, the expression takes 2 ms); other text goes through
    the expression, whose Unicode case folding the patterns share (a long s matches s)."""
    if text.isascii():
        low = text.lower()
        return any(word in low for word in _GATE_WORDS)
    return _GATE.search(text) is not None


def redact(text: str) -> str:
    """``text`` with every signature, credential, token and access key id replaced."""
    if not text or not _may_hold_secret(text):
        return text
    return redact_every_pattern(text)


def redact_every_pattern(text: str) -> str:
    """:func:`redact` without the gate: every pattern applied (the reference the gate is
    tested against)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_obj(value: Any) -> Any:
    """A copy of a JSON-like value with :func:`redact` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_obj(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_obj(v) for v in value)
    return value


def redact_document(document: dict[str, Any]) -> dict[str, Any]:
    """:func:`redact_obj` of a JSON document built for output, which may come back as the same
    object: when its JSON text holds no word of the gate (JSON escapes none of those letters,
    hyphens and underscores), no string in it can change, and the walk over every string is
    skipped (one serialisation and one search instead of a call per string)."""
    try:
        text = json.dumps(document, default=str)
    except (TypeError, ValueError):
        return dict(redact_obj(document))
    return document if not _may_hold_secret(text) else dict(redact_obj(document))


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the formatted message and any exception text of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not kill logging
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(handler: logging.Handler) -> None:
    """Add a RedactingFilter to ``handler`` unless it has one."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())
