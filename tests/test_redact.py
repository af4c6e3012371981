"""Redaction on real botocore/urllib3 debug log lines, captured from boto3 clients talking to the
local moto server with recognisable fake credentials (key id, secret and session token)."""

from __future__ import annotations

import io
import logging
import re
from typing import Iterator

import boto3
import pytest
import urllib3
from botocore.config import Config

from s3_route_agent.devenv.localenv.world import MotoServer
from s3_route_agent.redact import (REDACTED, RedactingFilter, redact, redact_every_pattern,
                                   redact_obj)

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
TEMP_KEY_ID = "ASIAQWERTYUIOPASDFGH"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKENxyz0123456789abcdef"


def _capture(moto: MotoServer, key_id: str) -> tuple[str, str]:
    """Run S3 and EC2 calls and fetch presigned URLs (SigV2 and SigV4) with DEBUG logging on;
    return (raw log text, log text through a RedactingFilter'd handler)."""
    raw, clean = io.StringIO(), io.StringIO()
    raw_handler = logging.StreamHandler(raw)
    clean_handler = logging.StreamHandler(clean)
    clean_handler.addFilter(RedactingFilter())
    fmt = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for handler in (raw_handler, clean_handler):
        handler.setFormatter(fmt)
    loggers = [logging.getLogger(n) for n in ("botocore", "urllib3")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    root = logging.getLogger()
    # Only these two handlers: a handler left on the root by another test (the CLI's, which
    # redacts) would rewrite the records before the raw handler sees them.
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = [raw_handler, clean_handler]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=SECRET,
                                        aws_session_token=TOKEN, region_name="eu-west-1")
        s3 = session.client("s3", endpoint_url=moto.endpoint_url)
        s3v4 = session.client("s3", endpoint_url=moto.endpoint_url,
                              config=Config(signature_version="s3v4"))
        bucket = f"redact-{key_id.lower()}"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={
            "LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket=bucket, Key="canary", Body=b"x")
        http = urllib3.PoolManager()
        for client in (s3, s3v4):
            url = client.generate_presigned_url("get_object",
                                                Params={"Bucket": bucket, "Key": "canary"})
            assert http.request("GET", url).status == 200
        session.client("ec2", endpoint_url=moto.endpoint_url).describe_vpcs()
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for lg, (level, propagate) in zip(loggers, saved):
            lg.setLevel(level)
            lg.propagate = propagate
    return raw.getvalue(), clean.getvalue()


@pytest.fixture(scope="module", params=[KEY_ID, TEMP_KEY_ID])
def captured(request: pytest.FixtureRequest, moto_server: MotoServer) -> Iterator[tuple[str, str]]:
    yield _capture(moto_server, request.param)


def _signatures(raw: str) -> set[str]:
    """Every signature value in the raw log: SigV4 header and query, SigV2 query, auth debug."""
    found = set(re.findall(r"Signature=([0-9a-f]{64})", raw))
    found |= set(re.findall(r"X-Amz-Signature=([0-9a-f]{64})", raw))
    found |= set(re.findall(r"[?&]Signature=([^&\s\"]+)", raw))
    found |= set(re.findall(r"Signature:\n([0-9a-f]{64})", raw))
    return found


def test_raw_botocore_logs_do_carry_secrets(captured: tuple[str, str]) -> None:
    raw, _ = captured
    # The capture is real: the unredacted lines hold every kind of secret the filter must catch.
    assert TOKEN in raw
    assert "X-Amz-Signature=" in raw and "X-Amz-Credential=" in raw
    assert "'Authorization': b'AWS4-HMAC-SHA256 Credential=" in raw
    assert re.search(r"(?:AKIA|ASIA)[A-Z0-9]{16}", raw)
    assert len(_signatures(raw)) >= 4


def test_filter_removes_every_secret(captured: tuple[str, str]) -> None:
    raw, clean = captured
    for secret in {KEY_ID, TEMP_KEY_ID, SECRET, TOKEN} | _signatures(raw):
        assert secret not in clean, secret
    assert REDACTED in clean
    # Everything else survives: the log is still useful.
    assert "Sending http request" in clean and "DescribeVpcs" in clean
    assert clean.count("\n") == raw.count("\n")


_FORMS = [
    ("aws_secret_access_key = " + SECRET, SECRET),
    ('{"AccessKeyId": "ASIAQWERTYUIOPASDFGH", "SecretAccessKey": "' + SECRET + '", '
     '"Token": "' + TOKEN + '"}', SECRET),
    ('{"SessionToken": "' + TOKEN + '"}', TOKEN),
    ("Authorization: AWS4-HMAC-SHA256 Credential=x/y, Signature=abc", "AWS4-HMAC-SHA256"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250101%2Feu-west-1"
     "%2Fs3%2Faws4_request&X-Amz-Security-Token=abc%2Fdef&X-Amz-Signature=deadbeef", "deadbeef"),
    ("url=https%3A%2F%2Fh%2Fk%3FX-Amz-Signature%3Dcafe1234%26x=1", "cafe1234"),
]


@pytest.mark.parametrize("text, secret", _FORMS)
def test_redact_forms(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and REDACTED in out
    assert "AKIAIOSFODNN7EXAMPLE" not in out and "ASIAQWERTYUIOPASDFGH" not in out


def _gate_corpus(raw: str) -> list[str]:
    """Strings for the gate: every captured log line, every form above, words each pattern
    keys on in other cases and spellings, and random strings built from those words."""
    import random
    words = ["X-Amz-Signature=", "x-amz-credential%3D", "X-AMZ-SECURITY-TOKEN=", "Signature=",
             "signature:", "AWSAccessKeyId=", "'Authorization': b'", '"authorization": "',
             "Authorization: ", "x-amz-security-token: ", "Credential=", "aws_secret_access_key",
             "AWS_SESSION_TOKEN=", "SecretAccessKey\": \"", '"Token": "', "sessiontoken:",
             KEY_ID, TEMP_KEY_ID, KEY_ID.lower(), "deadbeef" * 4, SECRET, TOKEN, " ", "\n",
             "&", "'", '"', ",", "}", "s3.eu-west-1.amazonaws.com", "route 0.0.0.0/0 -> nat-1",
             # non-ASCII: the gate's expression path, with the patterns' case folding
             "\u017fecret_access_key=", "\u212aey", "r\u00e9gion", "SESSION_\u0130TOKEN: "]
    rng = random.Random(13)
    corpus = raw.splitlines() + [text for text, _ in _FORMS]
    corpus += ["".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    return corpus


def test_gate_changes_no_output(captured: tuple[str, str]) -> None:
    raw, _ = captured
    corpus = _gate_corpus(raw)
    changed = 0
    for text in corpus:
        reference = redact_every_pattern(text)
        assert redact(text) == reference, text
        changed += reference != text
    # The corpus exercises the patterns: many strings are rewritten, some are not.
    assert 1000 < changed < len(corpus)


def test_redact_obj_walks_reports() -> None:
    report = {"targets": [{"evidence": ["presigned https://h/k?X-Amz-Signature=abc123&a=1"]}],
              "n": 3, "t": ("AKIAIOSFODNN7EXAMPLE",)}
    out = redact_obj(report)
    assert "abc123" not in str(out) and KEY_ID not in str(out) and out["n"] == 3


def test_cli_logging_installs_the_filter() -> None:
    from s3_route_agent.cli import configure_logging
    saved = logging.getLogger().handlers[:]
    try:
        configure_logging("WARNING")
        handler = logging.getLogger().handlers[0]
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        # botocore stays at WARNING unless asked (issue 5 section 6).
        assert logging.getLogger("botocore").level == logging.WARNING
    finally:
        logging.getLogger().handlers[:] = saved


@pytest.mark.parametrize("error", ["agent", "internal"])
def test_cli_one_line_failures_are_redacted(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str],
                                            error: str) -> None:
    """The UNKNOWN line main() prints for a failure goes through the redaction logs get."""
    import s3_route_agent.config
    from s3_route_agent.cli import main
    from s3_route_agent.errors import AgentError
    secret = "X-Amz-Signature=" + "ab" * 32

    def broken(_path: object) -> None:
        text = f"GET https://b.s3.amazonaws.com/k?{secret}\n  failed"
        raise AgentError("x", text) if error == "agent" else RuntimeError(text)
    monkeypatch.setattr(s3_route_agent.config, "load_config", broken)
    assert main(["check", "--config", "c.yaml"]) == 3
    err = capsys.readouterr().err
    assert "UNKNOWN" in err and "X-Amz-Signature=" in err
    assert "ab" * 32 not in err
    assert len(err.strip().splitlines()) == 1, err  # one line, even from a multi-line message


def test_redact_document_is_redact_obj() -> None:
    from s3_route_agent.redact import redact_document
    clean = {"targets": [{"evidence": ["route 0.0.0.0/0 -> nat-1"], "n": 1}], "errors": []}
    assert redact_document(clean) is clean
    dirty = {"targets": [{"evidence": ["GET https://h/k?X-Amz-Signature=abc123&a=1"]}],
             "id": KEY_ID, "ok": True}
    assert redact_document(dirty) == redact_obj(dirty) != dirty
