#!/usr/bin/env python3
"""Build the native packages of s3-route-agent: a .deb (dpkg-deb) and an .rpm (rpmbuild).

Both hold the same tree, with nothing enabled:

* ``/opt/s3-route-agent/lib``: the agent and its runtime dependencies (boto3, dnspython, PyYAML
  and theirs) as wheels built for Python 3.9 installed side by side, pure Python only (PyYAML's
  optional C extension is left out: PyYAML falls back to its Python implementation), so one
  ``noarch`` package runs on every system Python from 3.9 (Amazon Linux 2023) up;
* ``/opt/s3-route-agent/bin/s3-route-agent``: a launcher for the system ``python3`` that puts
  that lib first on ``sys.path`` (and finds it relative to itself); ``/usr/bin/s3-route-agent``
  links to it; the units' ``ExecStart=`` names it;
* the systemd units and the sysusers.d file of the ``s3-route-agent`` user;
* ``/etc/s3-route-agent/config.yaml``: the commented example with every setting commented out
  (the built-in defaults apply), a conffile (an edited one survives upgrades);
* ``/usr/share/doc/s3-route-agent``: IAM policies, CloudWatch assets, fleet templates;
* the manual page and the bash completion, generated from the CLI's parser.

The post-install script creates the user with ``systemd-sysusers --root "$DPKG_ROOT"`` (the
rpm one with ``systemd-sysusers``) and reloads systemd when it runs; it enables and starts
nothing.

Subcommands (offline except ``wheelhouse``)::

    build_packages.py wheelhouse DIR           # download the Python 3.9 runtime wheels once
    build_packages.py deb --wheelhouse DIR --out DIST
    build_packages.py rpm --wheelhouse DIR --out DIST
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

logger = logging.getLogger("build_packages")

ROOT = Path(__file__).resolve().parents[1]
NAME = "s3-route-agent"
PREFIX = Path("/opt/s3-route-agent")
LAUNCHER = PREFIX / "bin" / NAME
UNITS = ("s3-route-agent.service", "s3-route-agent-check.service", "s3-route-agent-check.timer")
CONFIG = Path("/etc/s3-route-agent/config.yaml")
DOC = Path("/usr/share/doc/s3-route-agent")
# The oldest Python the agent runs on (pyproject requires-python): the wheels are chosen for it.
TARGET_PYTHON = "3.9"
# botocore pins urllib3 below 1.27 on Python 3.9 and accepts it on later ones: one bundle for
# every Python from 3.9 takes the intersection (pip evaluates the dependencies' markers for the
# building interpreter, not for --python-version).
BUNDLE_PINS = ["urllib3>=1.25.4,<1.27"]
SUMMARY = "Proves which network path S3 traffic takes from an EC2 host"


def _pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.9/3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def version() -> str:
    """The project version (pyproject.toml)."""
    return str(_pyproject()["project"]["version"])


def _platforms() -> list[str]:
    machine = platform.machine()
    return [f"manylinux2014_{machine}", f"manylinux_2_17_{machine}", f"manylinux_2_28_{machine}"]


def _target_pip_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", TARGET_PYTHON, "--implementation", "cp",
            "--abi", f"cp{TARGET_PYTHON.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
    for name in _platforms():
        args += ["--platform", name]
    return args + ["--platform", "any"]


def fill_wheelhouse(directory: Path) -> None:
    """Download the runtime dependencies (for Python 3.9) into ``directory``: the one networked
    step; every build after it is offline."""
    directory.mkdir(parents=True, exist_ok=True)
    deps = _pyproject()["project"]["dependencies"]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(directory),
                    *_target_pip_args(), *deps, *BUNDLE_PINS], check=True)


def build_wheel(out: Path) -> Path:
    """The agent's wheel, built offline from this checkout."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)], check=True)
    return next(out.glob("s3_route_agent-*.whl"))


def _launcher_text() -> str:
    return textwrap.dedent(f"""\
        #!/usr/bin/python3 -s
        # s3-route-agent, installed by the {NAME} package: the system Python (3.9 or later) with
        # the package's own libraries first, so nothing of the system's site-packages is used.
        import os
        import sys

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
            os.path.realpath(__file__))), "lib"))
        from s3_route_agent.cli import main

        sys.exit(main())
        """)


def conffile_text(example: str) -> str:
    """The installed config: the commented example with every setting commented out, so a fresh
    install runs on the built-in defaults (region and identity from instance metadata) instead of
    the example's values (its ``aws.region: eu-west-1`` would be wrong on most hosts)."""
    lines = ["# Installed by the s3-route-agent package: every setting below is commented out, so",
             "# the built-in defaults apply. Uncomment and edit what this host needs, or replace",
             "# the file with `s3-route-agent init --force`. An edited file survives upgrades.",
             "#"]
    for line in example.splitlines():
        lines.append(line if not line.strip() or line.lstrip().startswith("#") else f"# {line}")
    return "\n".join(lines) + "\n"


def stage(tree: Path, wheelhouse: Path, work: Path) -> None:
    """Lay the installed files out under ``tree`` (the package's root)."""
    lib = tree / PREFIX.relative_to("/") / "lib"
    wheel = build_wheel(work / "wheel")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index",
                    "--find-links", str(wheelhouse), "--no-compile", "--target", str(lib),
                    *_target_pip_args(), str(wheel), *BUNDLE_PINS], check=True)
    shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts for the build's Python
    for compiled in [*lib.rglob("*.so"), *lib.rglob("__pycache__")]:
        if compiled.is_dir():
            shutil.rmtree(compiled)
        else:
            compiled.unlink()  # PyYAML's optional C extension: noarch, Python fallback
    launcher = tree / LAUNCHER.relative_to("/")
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(_launcher_text())
    launcher.chmod(0o755)
    # The manual page and bash completion, generated from the parser by the staged application
    # itself (the build's Python, with the package's lib only).
    for argv, target in ((["man"], "usr/share/man/man1/s3-route-agent.1.gz"),
                         (["completion", "bash"],
                          "usr/share/bash-completion/completions/s3-route-agent")):
        text = subprocess.run([sys.executable, "-s", str(launcher), *argv], check=True,
                              capture_output=True, env={"PATH": os.environ.get("PATH", ""),
                                                        "AWS_EC2_METADATA_DISABLED": "true"}
                              ).stdout
        path = tree / target
        path.parent.mkdir(parents=True, exist_ok=True)
        if target.endswith(".gz"):
            import gzip
            text = gzip.compress(text, compresslevel=9, mtime=0)  # reproducible (no mtime)
        path.write_bytes(text)
    usr_bin = tree / "usr" / "bin"
    usr_bin.mkdir(parents=True, exist_ok=True)
    (usr_bin / NAME).symlink_to(os.path.relpath(launcher, usr_bin))
    units = tree / "usr" / "lib" / "systemd" / "system"
    units.mkdir(parents=True, exist_ok=True)
    for unit in UNITS:
        shutil.copy2(ROOT / "systemd" / unit, units / unit)
    sysusers = tree / "usr" / "lib" / "sysusers.d"
    sysusers.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "systemd" / "s3-route-agent.sysusers", sysusers / f"{NAME}.conf")
    config = tree / CONFIG.relative_to("/")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(conffile_text((ROOT / "config" / "s3-route-agent.example.yaml").read_text()))
    config.chmod(0o644)
    doc = tree / DOC.relative_to("/")
    for folder in ("iam", "cloudwatch", "fleet"):
        shutil.copytree(ROOT / folder, doc / folder)
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink() and path != launcher:
            path.chmod(0o644)
        elif path.is_dir():
            path.chmod(0o755)


# Maintainer scripts. DPKG_ROOT is empty on a normal install and the target root when dpkg
# installs chrootless into another root (dpkg(1), "DPKG_ROOT"): never act on the running system
# then. Nothing is enabled or started: the operator chooses the service or the timer.
POSTINST = f"""\
#!/bin/sh
set -e
if [ "$1" = configure ] || [ "$1" = 1 ] || [ "$1" = 2 ]; then
  systemd-sysusers --root="${{DPKG_ROOT:-/}}" {NAME}.conf
  if [ -z "${{DPKG_ROOT:-}}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
fi
exit 0
"""
PRERM = f"""\
#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = 0 ]; then
  if [ -z "${{DPKG_ROOT:-}}" ] && [ -d /run/systemd/system ]; then
    systemctl stop {' '.join(UNITS)} || true
  fi
fi
exit 0
"""


def build_packages(kinds: list[str], wheelhouse: Path, out: Path, fast: bool = False
                   ) -> list[Path]:
    """Stage the tree once and build each of ``kinds`` ("deb", "rpm") from it into ``out``;
    ``fast``: light gzip compression instead of xz (the tests, where size does not matter)."""
    with tempfile.TemporaryDirectory(prefix="s3ra-pkg-") as tmp:
        staged = Path(tmp) / "staged"
        stage(staged, wheelhouse, Path(tmp))
        built = []
        for kind in kinds:
            tree = Path(tmp) / kind
            shutil.copytree(staged, tree, symlinks=True)
            built.append((build_deb if kind == "deb" else build_rpm)(tree, out, fast))
    return built


def build_deb(tree: Path, out: Path, fast: bool = False) -> Path:
    """dpkg-deb --build the staged ``tree`` (consumed); returns the .deb."""
    control = tree / "DEBIAN"
    control.mkdir()
    size_kib = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) // 1024
    (control / "control").write_text(textwrap.dedent(f"""\
        Package: {NAME}
        Version: {version()}
        Architecture: all
        Maintainer: s3-route-agent maintainers <s3-route-agent@example.invalid>
        Depends: python3 (>= {TARGET_PYTHON}), systemd
        Section: net
        Priority: optional
        Installed-Size: {size_kib}
        Homepage: https://github.com/s3-route-agent/s3-route-agent
        Description: {SUMMARY}
         s3-route-agent checks whether S3 traffic takes the gateway endpoint, an
         interface endpoint or the public path, with evidence and Nagios exit codes.
         The service and the timer are installed, not enabled.
        """))
    (control / "conffiles").write_text(f"{CONFIG}\n")
    for name, text in (("postinst", POSTINST), ("prerm", PRERM)):
        (control / name).write_text(text)
        (control / name).chmod(0o755)
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"{NAME}_{version()}_all.deb"
    compression = ["-Zgzip", "-z1"] if fast else ["-Zxz"]
    subprocess.run(["dpkg-deb", "--root-owner-group", *compression, "--build", str(tree),
                    str(deb)], check=True, stdout=subprocess.DEVNULL)
    return deb


def build_rpm(tree: Path, out: Path, fast: bool = False) -> Path:
    """rpmbuild -bb a spec whose %install copies the staged ``tree``; returns the .rpm."""
    with tempfile.TemporaryDirectory(prefix="s3ra-rpm-") as tmp:
        files = []
        for path in sorted(tree.rglob("*")):
            installed = "/" + str(path.relative_to(tree))
            if path.is_dir() and not path.is_symlink():
                if installed.startswith((f"{PREFIX}/", f"{DOC}/")):
                    files.append(f"%dir {installed}")  # the package owns its own folders
                continue
            files.append(f"%config(noreplace) {installed}" if Path(installed) == CONFIG
                         else installed)
        dirs = [f"%dir {d}" for d in (PREFIX, CONFIG.parent, DOC)]
        spec = Path(tmp) / f"{NAME}.spec"
        spec.write_text(textwrap.dedent(f"""\
            Name: {NAME}
            Version: {version()}
            Release: 1
            Summary: {SUMMARY}
            License: Apache-2.0
            URL: https://github.com/s3-route-agent/s3-route-agent
            BuildArch: noarch
            # The libraries are bundled under {PREFIX}: no automatic Python requirements.
            AutoReqProv: no
            Requires: python3 >= {TARGET_PYTHON}
            Requires: systemd
            %global __os_install_post %{{nil}}
            %global _build_id_links none

            %description
            s3-route-agent checks whether S3 traffic takes the gateway endpoint, an interface
            endpoint or the public path, with evidence and Nagios exit codes. The service and
            the timer are installed, not enabled.

            %install
            mkdir -p %{{buildroot}}
            cp -a {tree}/. %{{buildroot}}/

            %post
            """) + POSTINST.split("\n", 1)[1] + "\n%preun\n" + PRERM.split("\n", 1)[1]
            + "\n%files\n" + "\n".join([*dirs, *files]) + "\n")
        top = Path(tmp) / "rpmbuild"
        payload = "w1.gzdio" if fast else "w6.xzdio"
        subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}",
                        "--define", f"_binary_payload {payload}", str(spec)], check=True,
                       stdout=subprocess.DEVNULL)
        built = next((top / "RPMS" / "noarch").glob("*.rpm"))
        out.mkdir(parents=True, exist_ok=True)
        target = out / built.name
        shutil.copy2(built, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: ``wheelhouse``, ``deb`` or ``rpm``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    wh = sub.add_parser("wheelhouse", help="download the Python 3.9 runtime wheels")
    wh.add_argument("directory", type=Path)
    for kind in ("deb", "rpm"):
        p = sub.add_parser(kind, help=f"build the .{kind}")
        p.add_argument("--wheelhouse", type=Path, required=True)
        p.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    if args.command == "wheelhouse":
        fill_wheelhouse(args.directory)
        return 0
    for path in build_packages([args.command], args.wheelhouse, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
