"""`check` with damaged state files (issue 9 sections 3 and 4), end to end through the CLI
against the local environment (moto, DNS and IMDS on 127.0.0.1), as an operator would meet them:
binary garbage in every state file, and a cached prefix-list CIDR changed from /25 to /97."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from s3_route_agent.statefile import with_checksum

ROOT = Path(__file__).resolve().parents[2]
GARBAGE = b"\x89PNG\r\n\x1a\n\x00\xff\xfe\xc3\x28" * 64
TARGETS = [{"name": "regional", "host": "s3.{region}.amazonaws.com", "expect": "gateway"},
           {"name": "bucket-regional", "host": "{bucket}.s3.{region}.amazonaws.com",
            "expect": "gateway", "bucket": "demo-bucket"}]


@pytest.fixture(scope="module")
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment() as local:
        yield local


def _check(config: Path) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run([sys.executable, "-m", "s3_route_agent", "check", "--config",
                           str(config), "--format", "json"], cwd=ROOT, text=True,
                          capture_output=True, env=safe_environ(), timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def _config(env: LocalEnvironment, tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "state"
    config = env.write_config(tmp_path / "c.yaml", TARGETS, buckets=["demo-bucket"],
                              state_dir=str(state))
    return config, state


def _paths(report: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: t["path"] for t in report["targets"]}


def test_binary_garbage_in_every_state_file_is_set_aside_and_rebuilt(
        env: LocalEnvironment, tmp_path: Path) -> None:
    config, state = _config(env, tmp_path)
    code, cold, _ = _check(config)
    assert code == 0 and _paths(cold) == {"regional": "gateway", "bucket-regional": "gateway"}
    damaged = sorted(p.name for p in state.glob("*.json"))
    assert any(name.startswith("inventory-") for name in damaged) and "bucket-facts.json" in damaged
    for name in damaged:
        (state / name).write_bytes(GARBAGE)
    code, after, err = _check(config)
    assert code == 0, err
    assert "internal error" not in json.dumps(after)
    assert _paths(after) == _paths(cold)
    assert after["facts"]["inventory_source"] == "api"          # rebuilt from EC2
    for name in damaged:
        (aside,) = state.glob(f"{name}.corrupt-*")
        assert aside.read_bytes() == GARBAGE
        assert (state / name).read_bytes() != GARBAGE           # a good file again
    assert err.count("set aside") == len(damaged)                # logged once each
    code, warm, err = _check(config)
    assert code == 0 and warm["facts"]["inventory_source"] == "cache"
    assert "set aside" not in err


@pytest.mark.parametrize("rechecksum", [False, True], ids=["checksum", "cidr parse"])
def test_a_bit_flipped_cidr_in_the_cache_is_refetched(env: LocalEnvironment, tmp_path: Path,
                                                      rechecksum: bool) -> None:
    """The S3 prefix list's 198.51.100.0/25 made /97 in the cached inventory: not trusted (the
    targets would turn public via the NAT gateway); the inventory is fetched again and the
    verdicts stay gateway."""
    config, state = _config(env, tmp_path)
    code, cold, _ = _check(config)
    assert code == 0
    (cache,) = state.glob("inventory-*.json")
    text = cache.read_text()
    assert '"198.51.100.0/25"' in text
    document = json.loads(text.replace('"198.51.100.0/25"', '"198.51.100.0/97"'))
    if rechecksum:     # as if the flip happened before the checksum was made
        document = with_checksum({k: v for k, v in document.items() if k != "sha256"})
    cache.write_text(json.dumps(document))
    code, after, err = _check(config)
    assert code == 0, err
    assert _paths(after) == {"regional": "gateway", "bucket-regional": "gateway"}
    assert after["facts"]["inventory_source"] == "api"
    assert ("does not parse" if rechecksum else "checksum mismatch") in err
    assert '"198.51.100.0/25"' in cache.read_text()
