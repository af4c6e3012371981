"""What a run imports (issue 13): a warm `check` (fresh inventory and bucket caches) builds no
AWS client, so no boto3, botocore, s3transfer or urllib3 module may be loaded; `validate-config`
and `--help` load no collector either. Checked through ``sys.modules`` in a subprocess that runs
the CLI exactly as the console script does, against the local environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ

ROOT = Path(__file__).resolve().parents[1]

# Runs the CLI in-process, then prints the loaded modules (stdout of the CLI goes to stderr).
PROBE = """
import contextlib, json, sys
from s3_route_agent.cli import main
with contextlib.redirect_stdout(sys.stderr):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
AWS_SDK = ("boto3", "botocore", "s3transfer", "urllib3")


def loaded(*args: str) -> tuple[int, list[str]]:
    """(exit code, names of the modules loaded) of one CLI run in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, text=True,
                          capture_output=True, env=safe_environ(), timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["code"], out["modules"]


def sdk_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in AWS_SDK]


def test_warm_check_imports_no_aws_sdk(tmp_path: Path) -> None:
    with LocalEnvironment() as env:
        config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
        cold_code, cold = loaded("check", "--config", str(config), "--format", "json")
        warm_code, warm = loaded("check", "--config", str(config), "--format", "json")
        text_code, text = loaded("check", "--config", str(config))
    # The cold run really used the SDK (the probe sees imports), the warm ones did not.
    assert "botocore.client" in cold and cold_code == warm_code == text_code == 2
    assert sdk_modules(warm) == [] and sdk_modules(text) == []
    # Observation is off in this config: its socket and process collectors stay unloaded.
    assert "s3_route_agent.collectors.sock_diag" not in warm
    assert "s3_route_agent.collectors.flow_logs" not in warm


def test_validate_config_and_help_load_no_aws_sdk(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("aws:\n  region: eu-west-1\ntargets:\n- name: r\n  host: s3.{region}.amazonaws.com\n")
    # validate-config prints the targets check would use (the wiring: region, observed names),
    # but builds no client.
    code, modules = loaded("validate-config", str(config))
    assert code == 0
    assert sdk_modules(modules) == []
    # ... nor any collector of the check itself, nor the check, nor dnspython.
    heavy = ("s3_route_agent.runs.check", "s3_route_agent.collectors.dns_lookup",
             "s3_route_agent.collectors.inventory", "s3_route_agent.collectors.bucket_facts",
             "s3_route_agent.collectors.sock_diag", "s3_route_agent.collectors.processes",
             "dns", "urllib.request")
    assert [m for m in heavy if m in modules] == []
    code, modules = loaded("--help")
    assert code == 0 and sdk_modules(modules) == []
    assert not [m for m in modules if m.startswith("s3_route_agent.collectors")]
    assert "s3_route_agent.wiring" not in modules
