"""The agent runs on Python 3.9 (Amazon Linux 2023's system python), for real: a throwaway
Python 3.9 venv gets the agent's wheel and only its runtime dependencies (boto3, dnspython,
PyYAML; pip honours Requires-Python >=3.9), installed offline from the wheelhouse; every module
of the package is imported (an import-time ``X | Y`` or a missing name fails here, which static
checkers such as vermin miss), and ``check``, ``explain``, ``iam-policy`` and two daemon cycles
run against the local environment served from this (3.10+) test python: moto needs 3.10+, so
the tests and the demo do, the agent does not.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import jsonschema
import pytest

from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from s3_route_agent.report.document import report_schema
from support import packaging_module, wheelhouse_or_skip


def _python39() -> str | None:
    candidates = [os.environ.get("S3_ROUTE_AGENT_PYTHON39"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9"))),
                  shutil.which("python3.9")]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 9)":  # not a pyenv shim
            return candidate
    return None


PYTHON39 = _python39()
pytestmark = pytest.mark.skipif(PYTHON39 is None, reason="no Python 3.9 on this machine "
                                "(python3.9 on PATH, ~/.pyenv/versions/3.9*, or "
                                "$S3_ROUTE_AGENT_PYTHON39)")

IMPORT_ALL = """
import importlib, pkgutil, sys
import s3_route_agent
assert sys.version_info[:2] == (3, 9), sys.version
names = [m.name for m in pkgutil.walk_packages(s3_route_agent.__path__, "s3_route_agent.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


@pytest.fixture(scope="module")
def venv39(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheelhouse = wheelhouse_or_skip()
    base = tmp_path_factory.mktemp("py39")
    wheel = packaging_module().build_wheel(base / "wheel")
    venv = base / "venv"
    subprocess.run([str(PYTHON39), "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index",
                    "--find-links", wheelhouse, str(wheel)], check=True, timeout=300)
    return python


@pytest.fixture(scope="module")
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment() as local:
        yield local


def _run(python: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "s3_route_agent", *args], capture_output=True,
                          text=True, env=safe_environ(), timeout=timeout, cwd="/")


def test_installs_only_the_runtime_dependencies_and_imports_every_module(venv39: Path) -> None:
    installed = subprocess.run([str(venv39), "-m", "pip", "list", "--format", "json"],
                               capture_output=True, text=True, check=True).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert {"s3-route-agent", "boto3", "dnspython", "pyyaml"} <= names
    assert not names & {"moto", "pytest", "scapy"}
    result = subprocess.run([str(venv39), "-c", IMPORT_ALL], capture_output=True, text=True,
                            timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 50


def test_check_explain_and_run_on_python39(venv39: Path, env: LocalEnvironment,
                                           tmp_path: Path) -> None:
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    proc = _run(venv39, "check", "--config", str(config), "--format", "json")
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, report_schema())
    assert report["exit_code"] == proc.returncode == 2  # the local world's legacy global names
    paths = {t["name"]: t["path"] for t in report["targets"]}
    assert paths["regional"] == "gateway" and paths["interface"] == "interface"
    assert paths["legacy-global"] == "public" and not report["errors"]

    text = _run(venv39, "check", "--config", str(config), "--format", "text")
    assert text.returncode == 2 and "gateway" in text.stdout and "Traceback" not in text.stderr

    explained = _run(venv39, "explain", "--config", str(config), "s3.amazonaws.com")
    assert explained.returncode == 2 and "Route table" in explained.stdout, explained.stderr

    policy = _run(venv39, "iam-policy", "--config", str(config))
    assert policy.returncode == 0 and json.loads(policy.stdout)["Statement"]

    reports = tmp_path / "reports.jsonl"
    daemon_config = env.write_config(
        tmp_path / "d.yaml", state_dir=str(tmp_path / "state"),
        daemon={"interval_seconds": 0.2, "jitter_seconds": 0},
        outputs={"file": {"path": str(reports)}})
    run = _run(venv39, "run", "--config", str(daemon_config), "--max-cycles", "2")
    assert run.returncode == 0, run.stderr
    lines = reports.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(ln)["status"] == "CRITICAL" for ln in lines)
