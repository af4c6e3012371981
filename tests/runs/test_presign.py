"""Presigned-URL audit: every row of the botocore table in the reference (aws-facts.md, measured
with botocore 1.44.5), in several regions, with and without each host setting; then the audit
end to end against the local environment (moto, DNS server, IMDS emulator on 127.0.0.1).

Presigning needs no network; the local environment only listens on 127.0.0.1.
"""

from __future__ import annotations


import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from s3_route_agent import cli
from s3_route_agent.config import load_config
from s3_route_agent.runs.presign import (ClientSetup, presign, recommended_options, redact_url,
                           run_presign_audit, shape_findings, signature_version_of, smallest_fix,
                           url_shape)
from s3_route_agent.engine.model import Status

BUCKET = "my-bucket"
KEY = "k"
VPCE_URL_TEMPLATE = "https://bucket.vpce-0abc123-xyz12345.s3.{region}.vpce.amazonaws.com"
REAL_LOOKING_KEY = "AKIAIOSFODNN7EXAMPLE"




@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No real AWS reach: fake credentials, no IMDS, an empty ~/.aws/config of our own."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
    config_file = tmp_path / "aws-config"
    config_file.write_text("[default]\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", REAL_LOOKING_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return config_file


def shape_of(region: str, endpoint_url: str | None = None, bucket: str = BUCKET,
             **options: Any):
    setup = ClientSetup("default", region, endpoint_url, tuple(options.items()))
    urls = presign(setup, bucket, KEY)
    return url_shape(urls["GET"], bucket), url_shape(urls["PUT"], bucket)


# --- the botocore table, row by row -----------------------------------------------------------
# (id, region, endpoint_url, Config options, host, form, signature, addressing, object path)
VPCE = VPCE_URL_TEMPLATE
TABLE = [
    ("default us-east-1", "us-east-1", None, {}, "my-bucket.s3.amazonaws.com", "global", "sigv2",
     "virtual", "/k"),
    ("default us-east-1 s3v4", "us-east-1", None, {"signature_version": "s3v4"},
     "my-bucket.s3.amazonaws.com", "global", "sigv4", "virtual", "/k"),
    ("default us-west-2", "us-west-2", None, {}, "my-bucket.s3.amazonaws.com", "global", "sigv2",
     "virtual", "/k"),
    ("default eu-west-1", "eu-west-1", None, {}, "my-bucket.s3.amazonaws.com", "global", "sigv2",
     "virtual", "/k"),
    ("default us-west-2 s3v4 stays global", "us-west-2", None, {"signature_version": "s3v4"},
     "my-bucket.s3.amazonaws.com", "global", "sigv4", "virtual", "/k"),
    ("default eu-west-1 s3v4 stays global", "eu-west-1", None, {"signature_version": "s3v4"},
     "my-bucket.s3.amazonaws.com", "global", "sigv4", "virtual", "/k"),
    ("us-east-1 regional flag", "us-east-1", None,
     {"s3": {"us_east_1_regional_endpoint": "regional"}}, "my-bucket.s3.us-east-1.amazonaws.com",
     "regional", "sigv2", "virtual", "/k"),
    ("regional flag is a no-op outside us-east-1", "eu-west-1", None,
     {"s3": {"us_east_1_regional_endpoint": "regional"}}, "my-bucket.s3.amazonaws.com", "global",
     "sigv2", "virtual", "/k"),
    ("path style us-east-1", "us-east-1", None, {"s3": {"addressing_style": "path"}},
     "s3.amazonaws.com", "global", "sigv2", "path", "/my-bucket/k"),
    ("path style us-west-2", "us-west-2", None, {"s3": {"addressing_style": "path"}},
     "s3.us-west-2.amazonaws.com", "regional", "sigv2", "path", "/my-bucket/k"),
    ("path style eu-west-1", "eu-west-1", None, {"s3": {"addressing_style": "path"}},
     "s3.eu-west-1.amazonaws.com", "regional", "sigv2", "path", "/my-bucket/k"),
    ("virtual style us-west-2 (the usual fix)", "us-west-2", None,
     {"s3": {"addressing_style": "virtual"}}, "my-bucket.s3.us-west-2.amazonaws.com", "regional",
     "sigv2", "virtual", "/k"),
    ("virtual style eu-west-1 s3v4", "eu-west-1", None,
     {"signature_version": "s3v4", "s3": {"addressing_style": "virtual"}},
     "my-bucket.s3.eu-west-1.amazonaws.com", "regional", "sigv4", "virtual", "/k"),
    ("virtual style us-east-1 stays global", "us-east-1", None,
     {"s3": {"addressing_style": "virtual"}}, "my-bucket.s3.amazonaws.com", "global", "sigv2",
     "virtual", "/k"),
    ("vpce endpoint_url auto", "eu-west-1", VPCE.format(region="eu-west-1"), {},
     "bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce", "sigv2", "path",
     "/my-bucket/k"),
    ("vpce endpoint_url path us-east-1", "us-east-1", VPCE.format(region="us-east-1"),
     {"s3": {"addressing_style": "path"}},
     "bucket.vpce-0abc123-xyz12345.s3.us-east-1.vpce.amazonaws.com", "vpce", "sigv2", "path",
     "/my-bucket/k"),
    ("vpce endpoint_url virtual", "us-west-2", VPCE.format(region="us-west-2"),
     {"s3": {"addressing_style": "virtual"}},
     "my-bucket.bucket.vpce-0abc123-xyz12345.s3.us-west-2.vpce.amazonaws.com", "vpce", "sigv2",
     "virtual", "/k"),
    ("accelerate us-east-1", "us-east-1", None, {"s3": {"use_accelerate_endpoint": True}},
     "my-bucket.s3-accelerate.amazonaws.com", "accelerate", "sigv2", "virtual", "/k"),
    ("accelerate eu-west-1", "eu-west-1", None, {"s3": {"use_accelerate_endpoint": True}},
     "my-bucket.s3-accelerate.amazonaws.com", "accelerate", "sigv2", "virtual", "/k"),
    ("dual-stack eu-west-1", "eu-west-1", None, {"s3": {"use_dualstack_endpoint": True}},
     "my-bucket.s3.dualstack.eu-west-1.amazonaws.com", "regional", "sigv2", "virtual", "/k"),
    ("recommended eu-west-1", "eu-west-1", None, dict(recommended_options()),
     "my-bucket.s3.eu-west-1.amazonaws.com", "regional", "sigv4", "virtual", "/k"),
    ("recommended us-east-1", "us-east-1", None, dict(recommended_options()),
     "my-bucket.s3.us-east-1.amazonaws.com", "regional", "sigv4", "virtual", "/k"),
    ("recommended ap-southeast-2", "ap-southeast-2", None, dict(recommended_options()),
     "my-bucket.s3.ap-southeast-2.amazonaws.com", "regional", "sigv4", "virtual", "/k"),
]


@pytest.mark.parametrize("region,endpoint_url,options,host,form,signature,addressing,path",
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_botocore_table(region, endpoint_url, options, host, form, signature, addressing, path):
    for shape in shape_of(region, endpoint_url, **options):
        assert (shape.host, shape.form.form, shape.signature, shape.addressing,
                shape.object_path) == (host, form, signature, addressing, path)
        assert REAL_LOOKING_KEY not in shape.url and "Signature=REDACTED" in shape.url \
            or "X-Amz-Signature=REDACTED" in shape.url


# --- the same outcomes reached through the host's settings, not the client's Config -----------

def write_aws_config(path: Path, body: str) -> None:
    path.write_text("[default]\n" + body)


HOST_SETTING_CASES = [
    # (id, env vars, ~/.aws/config body, region, expected host, form, addressing)
    ("nothing set", {}, "", "us-east-1", "my-bucket.s3.amazonaws.com", "global", "virtual"),
    ("env AWS_S3_US_EAST_1_REGIONAL_ENDPOINT=regional",
     {"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional"}, "", "us-east-1",
     "my-bucket.s3.us-east-1.amazonaws.com", "regional", "virtual"),
    ("env regional flag ignored in eu-west-1", {"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional"},
     "", "eu-west-1", "my-bucket.s3.amazonaws.com", "global", "virtual"),
    ("config s3_us_east_1_regional_endpoint", {}, "s3 =\n  us_east_1_regional_endpoint = regional\n",
     "us-east-1", "my-bucket.s3.us-east-1.amazonaws.com", "regional", "virtual"),
    ("config top-level s3_us_east_1_regional_endpoint", {},
     "s3_us_east_1_regional_endpoint = regional\n", "us-east-1",
     "my-bucket.s3.us-east-1.amazonaws.com", "regional", "virtual"),
    ("config addressing_style = path", {}, "s3 =\n  addressing_style = path\n", "us-west-2",
     "s3.us-west-2.amazonaws.com", "regional", "path"),
    ("config addressing_style = virtual", {}, "s3 =\n  addressing_style = virtual\n", "eu-west-1",
     "my-bucket.s3.eu-west-1.amazonaws.com", "regional", "virtual"),
    ("config use_accelerate_endpoint", {}, "s3 =\n  use_accelerate_endpoint = true\n",
     "eu-west-1", "my-bucket.s3-accelerate.amazonaws.com", "accelerate", "virtual"),
    ("env AWS_USE_DUALSTACK_ENDPOINT", {"AWS_USE_DUALSTACK_ENDPOINT": "true"}, "", "eu-west-1",
     "my-bucket.s3.dualstack.eu-west-1.amazonaws.com", "regional", "virtual"),
    ("env AWS_ENDPOINT_URL_S3 = vpce", {"AWS_ENDPOINT_URL_S3": VPCE.format(region="eu-west-1")},
     "", "eu-west-1", "bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce",
     "path"),
    ("env AWS_ENDPOINT_URL = vpce", {"AWS_ENDPOINT_URL": VPCE.format(region="us-west-2")}, "",
     "us-west-2", "bucket.vpce-0abc123-xyz12345.s3.us-west-2.vpce.amazonaws.com", "vpce", "path"),
    ("config endpoint_url = vpce", {}, f"endpoint_url = {VPCE.format(region='eu-west-1')}\n",
     "eu-west-1", "bucket.vpce-0abc123-xyz12345.s3.eu-west-1.vpce.amazonaws.com", "vpce", "path"),
]


@pytest.mark.parametrize("env,body,region,host,form,addressing",
                         [c[1:] for c in HOST_SETTING_CASES],
                         ids=[c[0] for c in HOST_SETTING_CASES])
def test_default_client_follows_host_settings(aws_env, monkeypatch, env, body, region, host, form,
                                              addressing):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    write_aws_config(aws_env, body)
    get, _ = shape_of(region)
    assert (get.host, get.form.form, get.addressing) == (host, form, addressing)


@pytest.mark.parametrize("env,body", [
    ({"AWS_ENDPOINT_URL_S3": "https://s3.us-east-1.amazonaws.com"}, ""),
    ({}, "s3 =\n  addressing_style = path\n  use_accelerate_endpoint = true\n"),
    ({"AWS_USE_DUALSTACK_ENDPOINT": "true", "AWS_USE_FIPS_ENDPOINT": "true"}, ""),
], ids=["env endpoint", "config path+accelerate", "env dualstack+fips"])
def test_recommended_client_overrides_host_settings(aws_env, monkeypatch, env, body):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    write_aws_config(aws_env, body)
    for shape in shape_of("eu-west-1", **dict(recommended_options())):
        assert (shape.host, shape.signature, shape.addressing) == (
            "my-bucket.s3.eu-west-1.amazonaws.com", "sigv4", "virtual")


# --- parsing, not substrings ------------------------------------------------------------------

def test_bucket_named_like_a_region_does_not_look_regional():
    get, _ = shape_of("eu-west-1", bucket="us-west-2-logs")
    assert get.host == "us-west-2-logs.s3.amazonaws.com"
    assert get.form.form == "global" and get.form.region == "us-east-1"
    codes = {f.code for f in shape_findings(get, "us-west-2", "us-west-2", {})}
    assert {"global_endpoint", "region_mismatch", "sigv2"} <= codes


def test_signature_versions():
    assert signature_version_of("https://h/k?AWSAccessKeyId=A&Signature=s&Expires=1") == "sigv2"
    assert signature_version_of("https://h/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=s") \
        == "sigv4"
    assert signature_version_of("https://h/k?X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256") == "sigv4a"
    assert signature_version_of("https://h/k") == "unsigned"


def test_redaction_covers_every_secret_parameter():
    url = ("https://user:pw@b.s3.eu-west-1.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250101%2Feu-west-1%2Fs3%2Faws4_request"
           "&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE&X-Amz-Signature=abcdef0123"
           "&AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=xyz%2B%3D&x-amz-date=20250101T000000Z")
    out = redact_url(url)
    for secret in ("AKIAIOSFODNN7EXAMPLE", "FQoGZXIvYXdzEXAMPLE", "abcdef0123", "xyz", "pw@"):
        assert secret not in out
    assert out.count("REDACTED") == 5 and "x-amz-date=20250101T000000Z" in out


@pytest.mark.parametrize("region,found", [
    ("eu-west-1", {"global_endpoint", "sigv2", "region_mismatch"}),
    ("us-east-1", {"global_endpoint", "sigv2"}),
])
def test_default_findings(region, found):
    get, _ = shape_of(region)
    codes = {f.code for f in shape_findings(get, region, region, {})}
    assert codes == found


def test_path_style_is_only_info_on_an_interface_endpoint_name():
    get, _ = shape_of("eu-west-1", VPCE.format(region="eu-west-1"))
    by_code = {f.code: f for f in shape_findings(get, "eu-west-1", "eu-west-1", {})}
    assert by_code["path_style"].severity == "info" and "region_mismatch" not in by_code
    get, _ = shape_of("eu-west-1", s3={"addressing_style": "path"})
    by_code = {f.code: f for f in shape_findings(get, "eu-west-1", "eu-west-1", {})}
    assert by_code["path_style"].severity == "warning"


@pytest.mark.parametrize("options,host,fips,dualstack", [
    ({"s3": {"use_dualstack_endpoint": True}}, "my-bucket.s3.dualstack.us-east-1.amazonaws.com",
     False, True),
    ({"use_fips_endpoint": True}, "my-bucket.s3-fips.us-east-1.amazonaws.com", True, False),
    ({"use_fips_endpoint": True, "use_dualstack_endpoint": True},
     "my-bucket.s3-fips.dualstack.us-east-1.amazonaws.com", True, True),
], ids=["dualstack", "fips", "fips+dualstack"])
def test_fips_and_dualstack_are_flags_of_the_regional_form(options, host, fips, dualstack):
    """The report's ``form`` is the base form; ``fips`` and ``dualstack`` say the variant."""
    from s3_route_agent.runs.presign import PresignedUrl

    get, _ = shape_of("us-east-1", **options)
    assert (get.host, get.form.form, get.form.fips, get.form.dualstack) == (
        host, "regional", fips, dualstack)
    codes = {f.code for f in shape_findings(get, "us-east-1", "us-east-1", {})}
    assert ("fips" in codes, "dualstack" in codes) == (fips, dualstack)
    row = PresignedUrl("default", "GET", get, None, (), Status.UNKNOWN).to_dict()
    assert (row["form"], row["fips"], row["dualstack"]) == ("regional", fips, dualstack)


def test_global_endpoint_finding_says_the_bucket_name_follows_the_bucket():
    get, _ = shape_of("eu-west-1")
    (finding,) = [f for f in shape_findings(get, "eu-west-1", "eu-west-1", {})
                  if f.code == "global_endpoint"]
    assert "follows the bucket's region" in finding.message
    get, _ = shape_of("us-east-1", s3={"addressing_style": "path"})
    (finding,) = [f for f in shape_findings(get, "us-east-1", "us-east-1", {})
                  if f.code == "global_endpoint"]
    assert "answers from us-east-1" in finding.message


def test_accelerate_is_always_a_critical_finding():
    get, _ = shape_of("eu-west-1", s3={"use_accelerate_endpoint": True})
    by_code = {f.code: f for f in shape_findings(get, "eu-west-1", "eu-west-1", {})}
    assert by_code["accelerate"].severity == "critical"


# --- the smallest fix -------------------------------------------------------------------------

def fix_for(region: str, endpoint_url: str | None = None):
    default = ClientSetup("default", region, None)
    recommended = ClientSetup("recommended", region, endpoint_url, recommended_options())
    return smallest_fix(default, recommended, BUCKET, KEY)


@pytest.mark.parametrize("region,env,body,options", [
    ("eu-west-1", {}, "", {"signature_version": "s3v4", "s3": {"addressing_style": "virtual"}}),
    ("us-west-2", {}, "", {"signature_version": "s3v4", "s3": {"addressing_style": "virtual"}}),
    ("us-east-1", {}, "", {"signature_version": "s3v4",
                           "s3": {"us_east_1_regional_endpoint": "regional"}}),
    ("us-east-1", {"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional"}, "",
     {"signature_version": "s3v4"}),
    ("eu-west-1", {}, "s3 =\n  addressing_style = virtual\n  signature_version = s3v4\n", {}),
    ("eu-west-1", {"AWS_ENDPOINT_URL_S3": "https://bucket.vpce-1-a.s3.eu-west-1.vpce.amazonaws.com"},
     "s3 =\n  addressing_style = virtual\n  signature_version = s3v4\n",
     {"ignore_configured_endpoint_urls": True}),
    ("eu-west-1", {}, "s3 =\n  use_accelerate_endpoint = true\n",
     {"signature_version": "s3v4", "s3": {"addressing_style": "virtual",
                                          "use_accelerate_endpoint": False}}),
], ids=["eu-west-1 default", "us-west-2 default", "us-east-1 default", "us-east-1 env regional",
        "already fine", "env endpoint override", "config accelerate"])
def test_smallest_fix(aws_env, monkeypatch, region, env, body, options):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    write_aws_config(aws_env, body)
    fix = fix_for(region)
    assert fix.verified
    assert dict(fix.options) == options
    # boto3.client() uses a module-level default Session, created once per process: drop it so
    # the printed code reads this test's environment as a fresh application would.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    namespace: dict[str, Any] = {}
    exec(compile(fix.python, "<fix>", "exec"), namespace)  # the printed code builds a client
    url = namespace["s3"].generate_presigned_url("get_object", Params={"Bucket": BUCKET,
                                                                       "Key": KEY})
    shape = url_shape(url, BUCKET)
    assert (shape.host, shape.signature) == (f"my-bucket.s3.{region}.amazonaws.com", "sigv4")


def test_fix_with_interface_endpoint_names_the_endpoint_url():
    vpce = VPCE.format(region="eu-west-1")
    fix = fix_for("eu-west-1", vpce)
    assert fix.verified and fix.endpoint_url == vpce and f"endpoint_url={vpce!r}" in fix.python


# --- end to end against the local environment -------------------------------------------------



@pytest.fixture
def env_config(local_env, tmp_path, aws_env):
    path = local_env.write_config(tmp_path / "agent.yaml")
    return local_env, path


def by_config_method(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(u["config"], u["method"]): u for u in report["urls"]}


def test_audit_local_world_global_default_is_public(env_config):
    env, path = env_config
    from s3_route_agent.wiring import build_check_deps
    config = load_config(path)
    audit = run_presign_audit(config, build_check_deps(config), "demo-bucket", "report.csv")
    urls = by_config_method(audit.report)
    default, recommended = urls[("default", "GET")], urls[("recommended", "GET")]
    assert default["form"] == "global" and default["path"] == "public"
    assert {"global_endpoint", "sigv2", "region_mismatch", "not_private"} <= set(
        default["findings"])
    assert recommended["form"] == "regional" and recommended["path"] == "gateway"
    assert recommended["signature"] == "sigv4" and recommended["findings"] == []
    assert recommended["status"] == "OK" and default["status"] == "CRITICAL"
    assert audit.status is Status.CRITICAL
    assert "addressing_style': 'virtual'" in audit.report["fix"]["python"]


def test_audit_of_access_point_and_mrap_arns(env_config):
    """ARNs as the bucket: the access point's name is parsed as one, and an MRAP ARN, which the
    default client cannot sign without botocore[crt] (SigV4A), says so in one line."""
    env, path = env_config
    from s3_route_agent.wiring import build_check_deps
    config = load_config(path)
    ap = run_presign_audit(config, build_check_deps(config),
                           "arn:aws:s3:eu-west-1:123456789012:accesspoint/my-ap", "k")
    assert {u["form"] for u in ap.report["urls"]} == {"access_point"}
    assert {u["host"] for u in ap.report["urls"]} == {
        "my-ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com"}
    mrap = run_presign_audit(config, build_check_deps(config),
                             "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap", "k")
    assert {u["form"] for u in mrap.report["urls"]} == {"mrap"}
    import importlib.util
    has_default = any(u["config"] == "default" for u in mrap.report["urls"])
    if importlib.util.find_spec("awscrt") is None:      # SigV4A needs the CRT
        (error,) = mrap.report["errors"]
        assert not has_default
        assert "cannot presign with the default client" in error and "\n" not in error
    else:
        assert has_default


def test_audit_with_vpce_id_uses_the_endpoint_name(env_config):
    env, path = env_config
    from s3_route_agent.wiring import build_check_deps
    config = load_config(path)
    audit = run_presign_audit(config, build_check_deps(config), "demo-bucket", "k",
                              vpce_id=env.ids.interface_endpoint_id)
    for url in audit.report["urls"]:
        assert url["form"] == "vpce" and url["path"] == "interface"
        assert url["endpoint_id"] == env.ids.interface_endpoint_id
    urls = by_config_method(audit.report)
    assert "sigv2" in urls[("default", "PUT")]["findings"]
    assert audit.status is Status.WARNING  # private, but SigV2


def test_audit_accelerate_and_unknown_vpce(env_config, monkeypatch):
    env, path = env_config
    from s3_route_agent.wiring import build_check_deps
    config = load_config(path)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path.parent / "accel"))
    (path.parent / "accel").write_text("[default]\ns3 =\n  use_accelerate_endpoint = true\n")
    audit = run_presign_audit(config, build_check_deps(config), "demo-bucket", "k")
    default = by_config_method(audit.report)[("default", "GET")]
    assert default["form"] == "accelerate" and "accelerate" in default["findings"]
    assert default["status"] == "CRITICAL"
    assert "use_accelerate_endpoint': False" in audit.report["fix"]["python"]
    missing = run_presign_audit(config, build_check_deps(config), "demo-bucket", "k",
                                vpce_id="vpce-0000000000000dead")
    assert missing.status is Status.UNKNOWN and "vpce-0000000000000dead" in missing.report[
        "errors"][0]


@pytest.mark.parametrize("output_format", ["json", "text"])
def test_cli_presign(env_config, capsys, output_format):
    env, path = env_config
    code = cli.main(["presign", "--config", str(path), "--bucket", "demo-bucket", "--key",
                     "a/b.txt", "--format", output_format])
    out, err = capsys.readouterr()
    assert code == 2
    for secret in (REAL_LOOKING_KEY, "AKIAPRESIGNAUDIT", "FQoGZXIvYXdzEXAMPLETOKEN"):
        assert secret not in out and secret not in err
    if output_format == "json":
        report = json.loads(out)
        assert report["exit_code"] == 2
        for url in report["urls"]:
            assert set(url) >= {"config", "method", "host", "form", "signature", "path",
                                "findings"}
            assert url["config"] in ("default", "recommended")
            assert "REDACTED" in url["url"]
        assert report["check"]["identity"]["vpc_id"] == env.ids.vpc_id
    else:
        assert "smallest client-config fix" in out and "s3 = boto3.client(" in out
        assert "CRITICAL default     GET  global" in out


def test_cli_presign_bad_arguments_exit_unknown(env_config, capsys):
    _, path = env_config
    code = cli.main(["presign", "--config", str(path), "--bucket", "b", "--key", "k",
                     "--endpoint-url", "https://x", "--vpce-id", "vpce-1"])
    assert code == 3
    assert capsys.readouterr().out.startswith("S3ROUTE UNKNOWN - argument --vpce-id: not "
                                              "allowed with argument --endpoint-url")


def test_audit_runs_no_transfer_even_when_the_config_enables_it(local_env, tmp_path, aws_env):
    """presign reuses check but moves no data: transfer, oracle and probes are switched off."""
    from dataclasses import replace

    from s3_route_agent.wiring import build_check_deps

    def no_transfer(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("presign ran a test transfer")
    path = local_env.write_config(tmp_path / "agent.yaml", state_dir=str(tmp_path / "state"),
                                  transfer={"enabled": True, "bucket": "demo-bucket"},
                                  oracle={"bucket": "demo-bucket"}, probe={"enabled": True})
    config = load_config(path)
    assert config.transfer.enabled and config.probe.enabled
    deps = replace(build_check_deps(config), s3_client_for=no_transfer)
    audit = run_presign_audit(config, deps, "demo-bucket", "report.csv")
    assert audit.report["urls"]
    for target in audit.report["check"]["targets"]:
        assert "transfer" not in target and "probe" not in target and "oracle" not in target
