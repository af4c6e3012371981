"""Issue 12, the first ten minutes: no --config needed, the region from the environment, `init`,
`validate-config` printing the targets `check` uses, and default targets that do not page for
nothing. Against the local environment (real servers on 127.0.0.1); the CLI runs as a
subprocess. The machine's /etc is never touched: the config is found through
$S3_ROUTE_AGENT_CONFIG, and every run points IMDS at a local server (never 169.254.169.254)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Iterator

import jsonschema
import pytest
import yaml

from s3_route_agent.config import (BUILT_IN_DEFAULTS, CONFIG_ENV, DEFAULT_CONFIG_PATH,
                                   load_effective_config, locate_config)
from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from s3_route_agent.errors import ConfigError
from s3_route_agent.report.document import report_schema
from test_cli_check import run_cli


@pytest.fixture(scope="module")
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment() as local:
        yield local


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environ_for(imds_url: str, **extra: str) -> dict[str, str]:
    """The safe environment with IMDS on a local server (config defaults would ask
    169.254.169.254) and no config file named unless ``extra`` names one."""
    environ = safe_environ()
    environ.pop(CONFIG_ENV, None)
    environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds_url
    environ.update(extra)
    return environ


# ---- where the config comes from ------------------------------------------------------------

def test_config_location_order(tmp_path: Path) -> None:
    named = tmp_path / "named.yaml"
    assert locate_config("x.yaml", {CONFIG_ENV: str(named)}).how == "--config"
    where = locate_config(None, {CONFIG_ENV: str(named)})
    assert (where.path, where.how) == (str(named), f"${CONFIG_ENV}")
    if os.path.lexists(DEFAULT_CONFIG_PATH):
        pytest.skip(f"{DEFAULT_CONFIG_PATH} exists on this machine: the defaults case cannot be "
                    "seen without touching it")
    where = locate_config(None, {})
    assert (where.path, where.how) == (None, BUILT_IN_DEFAULTS)
    assert load_effective_config(None, {}).source == BUILT_IN_DEFAULTS


def test_a_missing_file_named_by_the_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"S3_ROUTE_AGENT_CONFIG.*no such file"):
        load_effective_config(None, {CONFIG_ENV: str(tmp_path / "missing.yaml")})


def test_check_without_config_reads_the_variable(env: LocalEnvironment, tmp_path: Path) -> None:
    """Reproduced: `check` required --config. Now $S3_ROUTE_AGENT_CONFIG is enough."""
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    proc = run_cli("check", "--format", "json",
                   environ=environ_for(env.imds.url, **{CONFIG_ENV: str(config)}))
    report = json.loads(proc.stdout)
    jsonschema.validate(report, report_schema())
    assert proc.returncode == 2 and len(report["targets"]) == 5, proc.stderr
    assert report["identity"]["region_source"] == "imds"


# ---- the region: config, then IMDS, then AWS_REGION / AWS_DEFAULT_REGION ---------------------

def _no_imds_config(env: LocalEnvironment, path: Path, **aws: object) -> Path:
    ids = env.ids
    return env.write_config(path, state_dir=str(path.parent / "state"),
                            imds={"enabled": False},
                            identity={"vpc_id": ids.vpc_id, "subnet_id": ids.app_subnet_id,
                                      "instance_id": ids.instance_id},
                            aws={"endpoint_url": env.moto.endpoint_url, **aws})


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_region_from_the_environment(env: LocalEnvironment, tmp_path: Path,
                                     variable: str) -> None:
    """Reproduced: AWS_REGION/AWS_DEFAULT_REGION were ignored (IMDS off: identity incomplete)."""
    config = _no_imds_config(env, tmp_path / "c.yaml")
    environ = environ_for(f"http://127.0.0.1:{closed_port()}")
    environ.pop("AWS_REGION", None)
    environ.pop("AWS_DEFAULT_REGION", None)
    environ[variable] = env.ids.region
    proc = run_cli("check", "--config", str(config), "--format", "json", environ=environ)
    report = json.loads(proc.stdout)
    jsonschema.validate(report, report_schema())
    assert report["identity"]["region"] == env.ids.region, report["errors"]
    assert report["identity"]["region_source"] == "environment"
    assert report["targets"][0]["path"] == "gateway"


def test_region_from_config_wins_and_none_at_all_is_unknown(env: LocalEnvironment,
                                                            tmp_path: Path) -> None:
    environ = environ_for(f"http://127.0.0.1:{closed_port()}", AWS_REGION="us-west-2")
    config = _no_imds_config(env, tmp_path / "c.yaml", region=env.ids.region)
    report = json.loads(run_cli("check", "--config", str(config), "--format", "json",
                                environ=environ).stdout)
    assert (report["identity"]["region"], report["identity"]["region_source"]) == (
        env.ids.region, "config")
    environ.pop("AWS_REGION")
    environ.pop("AWS_DEFAULT_REGION", None)
    proc = run_cli("check", "--config", str(config := _no_imds_config(env, tmp_path / "d.yaml")),
                   environ=environ)
    assert proc.returncode == 3
    assert proc.stdout.startswith("S3ROUTE UNKNOWN - IMDS is disabled and config lacks "
                                  "aws.region (or AWS_REGION)"), proc.stdout


# ---- validate-config prints the targets check uses --------------------------------------------

def test_validate_config_prints_the_targets_check_uses(env: LocalEnvironment,
                                                       tmp_path: Path) -> None:
    """Reproduced: validate-config said "0 target(s)" while check checked 4."""
    config = env.write_config(tmp_path / "c.yaml", targets=[], state_dir=str(tmp_path / "s"))
    environ = environ_for(env.imds.url, **{CONFIG_ENV: str(config)})
    proc = run_cli("validate-config", environ=environ)
    assert proc.returncode == 0, proc.stderr
    assert f"{config}: valid (${CONFIG_ENV}; 4 target(s), 1 bucket(s))" in proc.stdout
    assert f"region {env.ids.region} (from imds)" in proc.stdout
    listed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("  ")]
    report = json.loads(run_cli("check", "--format", "json", environ=environ).stdout)
    assert listed == [t["host"] for t in report["targets"]]
    assert all(t["origin"] == "default" for t in report["targets"])


def test_validate_config_of_the_built_in_defaults(tmp_path: Path) -> None:
    if os.path.lexists(DEFAULT_CONFIG_PATH):
        pytest.skip(f"{DEFAULT_CONFIG_PATH} exists on this machine")
    environ = environ_for(f"http://127.0.0.1:{closed_port()}", AWS_REGION="eu-central-1")
    proc = run_cli("validate-config", environ=environ)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{BUILT_IN_DEFAULTS}: valid ({BUILT_IN_DEFAULTS}; 2 target")
    assert "region eu-central-1 (from environment)" in proc.stdout
    assert "s3.eu-central-1.amazonaws.com" in proc.stdout


# ---- init ---------------------------------------------------------------------------------------

def test_init_writes_a_commented_config_for_this_host(env: LocalEnvironment,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "etc" / "config.yaml"
    environ = environ_for(env.imds.url, **{CONFIG_ENV: str(path)})
    proc = run_cli("init", environ=environ)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {path} for {env.ids.instance_id} in {env.ids.region}" in proc.stdout
    text = path.read_text()
    assert f"for {env.ids.instance_id} in {env.ids.region} ({env.ids.vpc_id}" in text
    assert text.count("\n#") > 20 and yaml.safe_load(text)["default_expect"] == "private"
    # What init wrote validates, and is the config `check` then uses.
    check = run_cli("validate-config", environ=environ)
    assert check.returncode == 0 and "2 target(s)" in check.stdout, check.stdout
    # It is not replaced without --force.
    path.write_text("buckets: [mine]\n")
    again = run_cli("init", environ=environ)
    assert again.returncode == 3 and "--force" in again.stdout
    assert again.stdout.startswith("S3ROUTE UNKNOWN - ")
    assert path.read_text() == "buckets: [mine]\n"
    assert run_cli("init", "--force", environ=environ).returncode == 0
    assert "written by `s3-route-agent init`" in path.read_text()


def test_init_without_instance_metadata_still_writes_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    environ = environ_for(f"http://127.0.0.1:{closed_port()}")
    proc = run_cli("init", "--output", str(path), environ=environ)
    assert proc.returncode == 0, proc.stderr
    assert "without instance metadata" in proc.stdout
    assert "Instance metadata did not answer" in path.read_text()
    assert run_cli("validate-config", str(path),
                   environ=dict(environ, AWS_REGION="eu-west-1")).returncode == 0


# ---- default targets nobody configured do not page ----------------------------------------------

def test_default_targets_not_seen_in_use_are_warning(env: LocalEnvironment,
                                                     tmp_path: Path) -> None:
    """Reproduced: with no targets configured every host outside us-east-1 went CRITICAL on day
    one (s3.amazonaws.com). Now WARNING with the explanation; a configured target keeps its
    expect (CRITICAL)."""
    config = env.write_config(tmp_path / "c.yaml", targets=[], state_dir=str(tmp_path / "s"))
    proc = run_cli("check", "--config", str(config), "--format", "json")
    report = json.loads(proc.stdout)
    jsonschema.validate(report, report_schema())
    by_host = {t["host"]: t for t in report["targets"]}
    legacy = by_host["s3.amazonaws.com"]
    assert (legacy["path"], legacy["status"], legacy["origin"]) == ("public", "WARNING",
                                                                   "default")
    # (The local environment's config turns observation off: the sentence says so.)
    assert any("is a default target" in e and "observe.enabled: false" in e
               for e in legacy["evidence"]), legacy["evidence"]
    assert report["status"] == "WARNING" and proc.returncode == 1
    configured = env.write_config(tmp_path / "d.yaml", state_dir=str(tmp_path / "s2"),
                                  targets=[{"name": "legacy", "host": "s3.amazonaws.com"}])
    proc = run_cli("check", "--config", str(configured), "--format", "json")
    (target,) = json.loads(proc.stdout)["targets"]
    assert (target["status"], target["origin"], proc.returncode) == ("CRITICAL", "config", 2)


class _NoSockets:
    """An observer whose look finds no connection (the names come from the kept state)."""

    def __init__(self) -> None:
        import time
        self.clock = time.time

    def look(self, networks):  # noqa: ANN001 - the HostObserver interface
        from s3_route_agent.engine.observed import SocketObservation
        return SocketObservation(time=self.clock(), source="sock_diag")

    def close(self) -> None:
        pass


def test_a_default_target_the_host_is_seen_using_stays_critical(env: LocalEnvironment,
                                                                 tmp_path: Path) -> None:
    """The rule with the report's real observed section: the host was seen resolving
    s3.amazonaws.com (kept in state_dir by an earlier run), so that default target pages."""
    import dataclasses
    import time

    from s3_route_agent.collectors.connections import ObservedStateFile, TrafficCollectors
    from s3_route_agent.config import load_config
    from s3_route_agent.engine.observed import NameRecord, ObservedState
    from s3_route_agent.runs.check import run_check
    from s3_route_agent.wiring import build_check_deps

    state_dir = tmp_path / "state"
    now = time.time()
    seen = NameRecord("s3.amazonaws.com", ("203.0.113.10",), now - 60, now - 30, resolved=True)
    assert not ObservedStateFile(state_dir).store(ObservedState(since=now - 600, names=(seen,)))
    config = load_config(env.write_config(tmp_path / "c.yaml", targets=[], buckets=[],
                                                state_dir=str(state_dir),
                                                observe={"enabled": True}))
    deps = dataclasses.replace(build_check_deps(config), traffic=TrafficCollectors(
        observer=_NoSockets(), state_file=ObservedStateFile(state_dir)))
    report = run_check(config, deps).report
    assert report.host_seen_using("s3.amazonaws.com")
    by_host = {v.target.host: v for v in report.verdicts}
    legacy = by_host["s3.amazonaws.com"]
    assert (legacy.target.origin, legacy.status.name) == ("default", "CRITICAL")
    assert report.status.name == "CRITICAL"
    jsonschema.validate(report.document, report_schema())
