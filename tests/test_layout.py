"""The tree shows the architecture: layer folders, every package installed, few modules at the
top, no private names imported across modules, typed verdict sections."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import s3_route_agent.engine.evidence as evidence
import s3_route_agent.engine.model as model

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "agent"
LAYERS = ("engine", "collectors", "live", "runs", "report", "sinks", "devenv")


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.9/3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_layer_folders_exist_and_tests_mirror_them() -> None:
    for layer in LAYERS:
        assert (AGENT / layer / "__init__.py").is_file(), layer
        assert (ROOT / "tests" / layer).is_dir(), f"tests/{layer} is missing"


def test_every_package_is_installed() -> None:
    """pyproject lists every folder of agent/ (setuptools cannot find under a renamed root),
    and the asset data packages: each top-level asset folder (and its subfolders) mapped under
    s3_route_agent.assets."""
    setuptools = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {"s3_route_agent" + ("." + ".".join(p.parent.relative_to(AGENT).parts)
                                 if p.parent != AGENT else "")
             for p in AGENT.rglob("__init__.py")}
    from s3_route_agent.assets import FOLDERS
    mapped = {name: folder for name, folder in setuptools["package-dir"].items()
              if name.startswith("s3_route_agent.assets.")}
    assert sorted(mapped.values()) == sorted(FOLDERS)
    for name, folder in mapped.items():
        assert name == f"s3_route_agent.assets.{folder}"
        found.add(name)
        found.update(f"{name}.{'.'.join(d.relative_to(ROOT / folder).parts)}"
                     for d in (ROOT / folder).rglob("*") if d.is_dir()
                     and d.name != "__pycache__")
    assert found == listed


def test_few_modules_at_the_top() -> None:
    top = sorted(p.name for p in AGENT.glob("*.py"))
    assert len(top) <= 12, top


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("s3_route_agent"):
            bad += [f"{node.module}.{a.name}" for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")]
    return bad


def test_no_private_name_is_imported_across_modules() -> None:
    offenders = {str(p.relative_to(ROOT)): _private_imports(p)
                 for p in [*AGENT.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_verdict_model_has_no_untyped_catch_all() -> None:
    """Every field of the model's and the evidence's dataclasses has a concrete type."""
    loose = []
    for module in (model, evidence):
        for obj in vars(module).values():
            if dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                for f in dataclasses.fields(obj):
                    hint = str(f.type)
                    if "Any" in hint or hint.startswith("dict"):
                        loose.append(f"{obj.__name__}.{f.name}: {hint}")
    assert loose == []
