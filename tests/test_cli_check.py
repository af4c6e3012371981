"""`s3-route-agent check` end to end through the CLI, against the local environment.

The local environment is real servers on 127.0.0.1 (moto over HTTP, a DNS server, an IMDSv2
emulator); the CLI runs as a subprocess with fake credentials, exactly as an operator runs it.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest

from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from s3_route_agent.report.document import report_schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment() as local:
        yield local


def run_cli(*args: str, environ: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "s3_route_agent", *args], cwd=ROOT, text=True,
                          capture_output=True, env=environ or safe_environ(), timeout=timeout)


def check_json(config: Path, *extra: str, environ: dict[str, str] | None = None,
               ) -> tuple[int, dict[str, Any], str]:
    proc = run_cli("check", "--config", str(config), "--format", "json", *extra, environ=environ)
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, report_schema())
    assert report["exit_code"] == proc.returncode
    return proc.returncode, report, proc.stderr


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in report["targets"]}


def test_check_reports_each_path_with_evidence(env, tmp_path):
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    code, report, stderr = check_json(config)
    targets = by_name(report)
    assert targets["regional"]["path"] == "gateway" and targets["regional"]["status"] == "OK"
    assert targets["regional"]["addresses"][0]["endpoint_id"] == env.ids.gateway_endpoint_id
    assert targets["bucket-regional"]["path"] == "gateway"
    assert targets["interface"]["path"] == "interface"
    assert targets["interface"]["addresses"][0]["endpoint_id"] == env.ids.interface_endpoint_id
    assert targets["interface"]["addresses"][0]["endpoint_in_vpc"] is True
    glob = targets["legacy-global"]
    assert (glob["path"], glob["status"]) == ("public", "CRITICAL")
    assert glob["addresses"][0]["s3_region"] == "us-east-1"
    assert glob["addresses"][0]["route"]["target"] == env.ids.nat_gateway_id
    assert any("legacy global S3 name" in e for e in glob["evidence"])
    assert targets["bucket-global"]["dns"]["cname_chain"] == ["s3-1-w.amazonaws.com"]
    # The bucket's name on the global endpoint follows the bucket: the evidence says what DNS
    # answered rather than "us-east-1" (only s3.amazonaws.com always answers from there).
    assert any("DNS answered demo-bucket.s3.amazonaws.com with 203.0.113.11: S3 of us-east-1" in e
               for e in targets["bucket-global"]["evidence"])
    assert report["status"] == "CRITICAL" and code == 2
    assert report["identity"]["source"] == "imds"
    assert report["identity"]["instance_id"] == env.ids.instance_id
    assert report["facts"]["route_table"] == env.ids.app_route_table_id
    assert "legacy-global" in stderr.splitlines()[-1]  # the one-line summary on stderr


def test_private_only_targets_exit_ok_and_warm_run_makes_no_ec2_call(env, tmp_path):
    targets = [{"name": "regional", "host": "s3.{region}.amazonaws.com", "expect": "gateway"}]
    config = env.write_config(tmp_path / "c.yaml", targets=targets,
                              state_dir=str(tmp_path / "state"))
    code, cold, _ = check_json(config)
    assert code == 0 and cold["status"] == "OK"
    assert cold["facts"]["inventory_source"] == "api"
    # One call per EC2 API (see bench/bench_check.py): route tables, the S3 prefix list and its
    # entries, endpoints, endpoint ENIs, NAT gateways, security group rules, network ACLs, Block
    # Public Access options (the table routes to a NAT gateway; BPA is off: no exclusions).
    assert cold["facts"]["ec2_calls"] == 9
    code, warm, _ = check_json(config)
    assert code == 0
    assert warm["facts"]["inventory_source"] == "cache" and warm["facts"]["ec2_calls"] == 0
    code, refreshed, _ = check_json(config, "--refresh")
    assert refreshed["facts"]["inventory_source"] == "api"
    # A refresh of a cached inventory skips the prefix-list entries (same version) and the
    # endpoint ENIs (same ids): DescribeRouteTables, DescribeManagedPrefixLists,
    # DescribeVpcEndpoints, DescribeNatGateways, DescribeSecurityGroupRules,
    # DescribeNetworkAcls, DescribeVpcBlockPublicAccessOptions.
    assert refreshed["facts"]["ec2_calls"] == 7


def test_refresh_fetches_prefix_list_entries_when_the_version_changes(env, tmp_path):
    from s3_route_agent.devenv.localenv import moto_patches, world
    targets = [{"name": "regional", "host": "s3.{region}.amazonaws.com", "expect": "gateway"}]
    config = env.write_config(tmp_path / "c.yaml", targets=targets,
                              state_dir=str(tmp_path / "state"))
    assert check_json(config)[1]["facts"]["ec2_calls"] == 9
    cidrs = world.S3_PREFIX_LIST_CIDRS[world.REGION]
    try:
        # The S3 prefix list loses the range the regional name resolves to: a new version.
        moto_patches.set_aws_prefix_list_cidrs(world.REGION, ("198.51.100.128/25",))
        code, report, _ = check_json(config, "--refresh")
        assert report["facts"]["ec2_calls"] == 8       # entries fetched again, ENIs not
        assert report["targets"][0]["path"] == "public" and code == 2
    finally:
        moto_patches.set_aws_prefix_list_cidrs(world.REGION, cidrs)


def test_text_format_is_a_nagios_plugin_output_that_fits_80_columns(env, tmp_path):
    """Issue 12: the first line is the plugin line naming the failing targets, perfdata after
    "|"; then the long output, 80 columns at most, evidence only for targets not OK."""
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    proc = run_cli("check", "--config", str(config), "--format", "text")
    lines = proc.stdout.splitlines()
    plugin, _, perf = lines[0].partition(" | ")
    assert plugin == ("S3ROUTE CRITICAL - 2/5 target(s) not OK: legacy-global public (expected "
                      "private); bucket-global public (expected private)"), lines[0]
    assert perf.startswith("duration=") and "targets_ok=3;;5:;0;5" in perf
    assert lines[1].startswith("s3-route-agent ")
    wide = [line for line in lines[1:] if len(line) > 80]
    assert not wide, wide
    table = [line for line in lines if line.startswith(("OK ", "CRITICAL ", "WARNING "))]
    assert len(table) == 5
    assert any(line.startswith("OK") and "gateway" in line for line in table)
    assert any("  - " in line and "legacy global" in line for line in lines)
    blocks = [line for line in lines if line.startswith("[")]
    assert [b.split("]")[0] for b in blocks] == ["[legacy-global", "[bucket-global"], blocks
    assert "(3 OK target(s): evidence with -v)" in lines
    assert "\x1b[" not in proc.stdout               # not a terminal: no colour
    assert proc.returncode == 2
    # -v (a global flag, here after the subcommand): every target's evidence.
    verbose = run_cli("check", "--config", str(config), "-v").stdout.splitlines()
    assert len([line for line in verbose if line.startswith("[")]) == 5
    assert not [line for line in verbose[1:] if len(line) > 80]


def test_dns_timeout_is_critical_with_reason(env, tmp_path):
    env.zone.set_behaviour("slow.s3.eu-west-1.amazonaws.com", "timeout")
    targets = [{"name": "slow", "host": "slow.s3.{region}.amazonaws.com", "expect": "any"}]
    config = env.write_config(tmp_path / "c.yaml", targets=targets,
                              state_dir=str(tmp_path / "state"),
                              dns={"nameservers": ["127.0.0.1"], "port": env.dns.port,
                                   "timeout_seconds": 0.3})
    code, report, stderr = check_json(config)
    target = report["targets"][0]
    assert code == 2 and target["path"] == "unresolved" and target["status"] == "CRITICAL"
    assert target["dns"]["failure"]["kind"] == "timeout"
    assert "timeout" in target["reason"].lower()
    assert "timeout" in stderr.lower()


def test_nxdomain_is_critical(env, tmp_path):
    targets = [{"name": "typo", "host": "s3.{region}.amazonaws.co", "expect": "any"}]
    config = env.write_config(tmp_path / "c.yaml", targets=targets,
                              state_dir=str(tmp_path / "state"))
    code, report, _ = check_json(config)
    assert code == 2 and report["targets"][0]["dns"]["failure"]["kind"] == "nxdomain"


# --- bad input: one line on stderr, the right exit code, never a traceback -----------------

def assert_one_line_unknown(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    reasons = [line for line in proc.stderr.splitlines() if "UNKNOWN" in line]
    assert reasons and needle in reasons[-1], proc.stderr


@pytest.mark.parametrize("text,needle", [
    ("aws: {region: [\n", "malformed YAML"),
    ("dns:\n  prot: 53\n", "dns.prot (line 2): unknown key"),
    ("aws:\n  region: eu-middle-9\n", "unknown AWS region 'eu-middle-9'"),
])
def test_bad_config_is_unknown(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for proc in (run_cli("check", "--config", str(path)), run_cli("validate-config", str(path))):
        assert_one_line_unknown(proc, needle)
        # Issue 12: the reason is on stdout too, as the plugin line Nagios shows.
        first = proc.stdout.splitlines()[0]
        assert first.startswith("S3ROUTE UNKNOWN - ") and needle in first, proc.stdout
    # In JSON mode a schema-valid UNKNOWN report, so `>> reports.jsonl` gets no gap.
    proc = run_cli("check", "--config", str(path), "--format", "json")
    assert_one_line_unknown(proc, needle)
    report = json.loads(proc.stdout)
    jsonschema.validate(report, report_schema())
    assert report["status"] == "UNKNOWN" and report["exit_code"] == 3
    assert needle in report["errors"][0] and needle in report["summary"]


def test_validate_config_accepts_example():
    proc = run_cli("validate-config", str(ROOT / "config" / "s3-route-agent.example.yaml"))
    assert proc.returncode == 0 and "valid" in proc.stdout


def test_bad_arguments_exit_unknown_not_critical():
    proc = run_cli("presign", "--bucket", "b")
    assert proc.returncode == 3 and "the following arguments are required" in proc.stderr
    assert proc.stdout.startswith("S3ROUTE UNKNOWN - the following arguments are required")
    proc = run_cli("check", "--format", "xml")
    assert proc.returncode == 3 and proc.stdout.startswith("S3ROUTE UNKNOWN - argument --format")
    proc = run_cli("check", "--format", "json", "--no-such-flag")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, report_schema())
    assert report["status"] == "UNKNOWN" and "--no-such-flag" in report["errors"][0]


def test_no_credentials_is_unknown_with_reason(env, tmp_path):
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    environ = safe_environ()
    del environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"]
    code, report, stderr = check_json(config, environ=environ)
    assert code == 3 and report["status"] == "UNKNOWN"
    assert any("credentials" in e.lower() for e in report["errors"])
    assert "credentials" in stderr.lower()
    assert all(t["path"] in ("unknown", "unresolved") for t in report["targets"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_imds_down_is_unknown_with_reason(env, tmp_path):
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"),
                              imds={"endpoint": f"http://127.0.0.1:{closed_port()}",
                                    "timeout_seconds": 0.5, "attempts": 1})
    code, report, stderr = check_json(config)
    assert code == 3 and report["identity"] is None and report["targets"] == []
    assert "IMDS" in report["errors"][0] and "unreachable" in report["errors"][0]
    assert "IMDS" in stderr


def test_ec2_unreachable_is_unknown(env, tmp_path):
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"),
                              aws={"endpoint_url": f"http://127.0.0.1:{closed_port()}",
                                   "max_attempts": 1, "connect_timeout_seconds": 0.5})
    code, report, _ = check_json(config)
    assert code == 3 and any("unreachable" in e or "connect" in e.lower()
                             for e in report["errors"])


class _DenyAll(http.server.BaseHTTPRequestHandler):
    """Answers every EC2 call the way EC2 answers a caller without the IAM permission."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
                b"<Code>UnauthorizedOperation</Code><Message>You are not authorized to perform "
                b"this operation.</Message></Error></Errors><RequestID>r-1</RequestID></Response>")
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_ec2_access_denied_is_unknown_and_names_the_permission(env, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DenyAll)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"),
                                  aws={"endpoint_url": f"http://127.0.0.1:{server.server_port}",
                                       "max_attempts": 1})
        code, report, stderr = check_json(config)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 3
    assert any("denied" in e and "ec2:Describe" in e for e in report["errors"]), report["errors"]
    assert "denied" in stderr


def test_stale_cache_is_used_when_ec2_fails(env, tmp_path):
    state = str(tmp_path / "state")
    targets = [{"name": "regional", "host": "s3.{region}.amazonaws.com", "expect": "gateway"}]
    good = env.write_config(tmp_path / "good.yaml", targets=targets, state_dir=state)
    assert check_json(good)[0] == 0
    broken = env.write_config(tmp_path / "broken.yaml", targets=targets, state_dir=state,
                              aws={"endpoint_url": f"http://127.0.0.1:{closed_port()}",
                                   "max_attempts": 1, "connect_timeout_seconds": 0.5},
                              inventory={"ttl_seconds": 0})
    code, report, _ = check_json(broken)
    target = report["targets"][0]
    assert target["path"] == "gateway" and target["status"] == "WARNING" and code == 1
    assert any("stale" in e for e in target["evidence"])


def test_console_script_entry_point_matches_module():
    from s3_route_agent.cli import main
    import tomllib
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["s3-route-agent"] == "s3_route_agent.cli:main" and callable(main)


def test_aws_debug_logs_botocore_but_redacts_signatures(env, tmp_path):
    import re
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    quiet = run_cli("--log-level", "DEBUG", "check", "--config", str(config))
    assert quiet.returncode == 2 and "DEBUG" in quiet.stderr      # the agent's own debug lines
    assert "Sending http request" not in quiet.stderr  # botocore stays at WARNING unless asked
    loud = run_cli("--log-level", "DEBUG", "--aws-debug", "check", "--config", str(config),
                   "--refresh")
    assert loud.returncode == 2
    assert "Sending http request" in loud.stderr   # botocore's own DEBUG lines are there
    assert "Authorization" in loud.stderr
    assert not re.search(r"Signature=[0-9a-f]{64}", loud.stderr)
    assert not re.search(r"Credential=testing/", loud.stderr)
