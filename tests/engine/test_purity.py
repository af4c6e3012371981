"""The engine is pure: frozen facts in, verdicts out. No module of agent/engine/ imports a
library that does I/O, or another layer of the agent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "agent" / "engine"
# I/O libraries (the list) and the agent's other layers, which do I/O or read config.
FORBIDDEN = {"boto3", "botocore", "dns", "scapy", "socket", "http", "ssl", "subprocess",
             "requests", "urllib3"}
OTHER_LAYERS = {"collectors", "live", "runs", "report", "sinks", "devenv", "cli", "wiring",
                "config", "aws", "statefile"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (functions included)."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(ENGINE.glob("*.py"))


def test_engine_has_modules() -> None:
    assert len(MODULES) >= 8, MODULES


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_engine_module_is_pure(path: Path) -> None:
    """No I/O library, no other agent layer."""
    bad = set()
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top in FORBIDDEN:
            bad.add(name)
        parts = name.split(".")
        if top == "s3_route_agent" and len(parts) > 1 and parts[1] in OTHER_LAYERS:
            bad.add(name)
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_check_finds_a_forbidden_import(tmp_path: Path) -> None:
    """The scan sees imports inside functions and ``from x import y`` forms."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import socket\n    from botocore.config import Config\n")
    assert {"socket", "botocore.config"} <= imported_modules(sample)
