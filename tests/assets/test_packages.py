"""Packaging: the wheel carries the assets as package data; `make deb` / `make rpm` build native
packages holding a self-contained application under /opt/s3-route-agent, the units, the config as
a conffile and nothing enabled. The .deb is installed into a throwaway root (dpkg --root,
chrootless maintainer scripts acting on $DPKG_ROOT, the machine's /etc bind-mounted read-only so a
stray write fails), never into this machine's own."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from support import packaging_module, wheelhouse_or_skip

ROOT = Path(__file__).resolve().parents[2]
ASSET_FOLDERS = ("systemd", "config", "iam", "cloudwatch", "fleet")
UNITS = ("s3-route-agent.service", "s3-route-agent-check.service", "s3-route-agent-check.timer")


def _tracked(folder: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    return out or [str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packaging_module().build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_carries_every_asset_file(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith("/METADATA"))
    for folder in ASSET_FOLDERS:
        files = _tracked(folder)
        assert files, folder
        for path in files:
            assert f"s3_route_agent/assets/{path}" in names, path
    assert "Requires-Python: >=3.9" in metadata
    # Installed, asset_path finds the wheel's copies.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(target), str(wheel)], check=True)
    found = subprocess.run([sys.executable, "-c", "from s3_route_agent.assets import asset_path;"
                            "print(asset_path('systemd/s3-route-agent.service'))"],
                           capture_output=True, text=True, env={**os.environ,
                                                                "PYTHONPATH": str(target)},
                           cwd=tmp_path, check=True).stdout.strip()
    assert Path(found).is_relative_to(target)
    assert Path(found).read_text() == (ROOT / "systemd" / "s3-route-agent.service").read_text()


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    wheelhouse = wheelhouse_or_skip()
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb missing")
    kinds = ["deb"] + (["rpm"] if shutil.which("rpmbuild") else [])
    out = tmp_path_factory.mktemp("dist")
    built = packaging_module().build_packages(kinds, Path(wheelhouse), out, fast=True)
    yield dict(zip(kinds, built))


def _deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "--field", str(deb), field], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_deb_contents(packages: dict[str, Path]) -> None:
    deb = packages["deb"]
    assert _deb_field(deb, "Package") == "s3-route-agent"
    assert _deb_field(deb, "Architecture") == "all"
    assert "python3 (>= 3.9)" in _deb_field(deb, "Depends")
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True,
                             text=True, check=True).stdout
    paths = {line.split()[5].lstrip(".") for line in listing.splitlines()}
    for unit in UNITS:
        assert f"/usr/lib/systemd/system/{unit}" in paths
    assert {"/opt/s3-route-agent/bin/s3-route-agent", "/usr/bin/s3-route-agent",
            "/usr/lib/sysusers.d/s3-route-agent.conf", "/etc/s3-route-agent/config.yaml",
            "/opt/s3-route-agent/lib/s3_route_agent/cli.py",
            "/opt/s3-route-agent/lib/botocore/__init__.py",
            "/usr/share/man/man1/s3-route-agent.1.gz",
            "/usr/share/bash-completion/completions/s3-route-agent"} <= paths
    # Nothing enabled: no .wants/ link, and the scripts enable and start nothing.
    assert not [p for p in paths if ".wants/" in p or p.startswith("/etc/systemd")]
    assert not [p for p in paths if p.endswith(".so")]  # noarch: pure Python only
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True,
                             check=True).stdout
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(control)) as tar:
        conffiles = tar.extractfile("./conffiles").read().decode().split()
        postinst = tar.extractfile("./postinst").read().decode()
    assert conffiles == ["/etc/s3-route-agent/config.yaml"]
    assert "systemd-sysusers" in postinst
    assert "enable" not in postinst and "start" not in postinst


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_deb_installs_into_a_throwaway_root(packages: dict[str, Path], tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("dpkg --root with maintainer scripts needs root")
    if shutil.which("dpkg") is None or shutil.which("unshare") is None:
        pytest.skip("dpkg or unshare missing")
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    before = {p: _digest(p) for p in ("/etc/passwd", "/etc/group")}
    install = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind /etc /etc && mount -o remount,bind,ro /etc && exec dpkg --root="$1" '
         "--force-script-chrootless --force-depends --log=/dev/null --install \"$2\"",
         "sh", str(root), str(packages["deb"])], capture_output=True, text=True, timeout=180)
    assert install.returncode == 0, install.stdout + install.stderr
    assert {p: _digest(p) for p in before} == before  # the machine's users are untouched
    status = subprocess.run(["dpkg", f"--root={root}", "--status", "s3-route-agent"],
                            capture_output=True, text=True, check=True).stdout
    assert "Status: install ok installed" in status
    # The postinst made the user inside the throwaway root.
    passwd = (root / "etc" / "passwd").read_text()
    assert passwd.startswith("s3-route-agent:") and ":/usr/sbin/nologin" in passwd
    # The application runs from there with the system python, without this venv.
    launcher = root / "usr" / "bin" / "s3-route-agent"
    from s3_route_agent.devenv.localenv.environment import safe_environ
    env = safe_environ({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})  # fake credentials
    # validate-config asks instance metadata for the region: a closed port on loopback answers.
    env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:9"
    version = subprocess.run([str(launcher), "--version"], capture_output=True, text=True,
                             env=env, timeout=60)
    assert version.returncode == 0 and "0.1.0" in version.stdout, version.stderr
    config = root / "etc" / "s3-route-agent" / "config.yaml"
    valid = subprocess.run([str(launcher), "validate-config", str(config)], capture_output=True,
                           text=True, env=env, timeout=60)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    # The conffile is the example with every setting commented out: the built-in defaults.
    from s3_route_agent.config import AgentConfig, load_config
    installed = load_config(config)
    assert dataclasses.replace(installed, source=None) == dataclasses.replace(AgentConfig(),
                                                                               source=None)
    example = (ROOT / "config" / "s3-route-agent.example.yaml").read_text()
    assert "# aws:" in config.read_text() and "\naws:" in example
    # The documented assets are installed too: the CloudWatch agent's policy from its config.
    cw = root / "usr/share/doc/s3-route-agent/cloudwatch/amazon-cloudwatch-agent.json"
    policy = subprocess.run([str(launcher), "iam-policy", "--cloudwatch-agent", str(cw)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert policy.returncode == 0 and "logs:PutRetentionPolicy" in policy.stdout, policy.stderr
    # The system python alone has no s3_route_agent: what ran came from the package's lib.
    bare = subprocess.run(["/usr/bin/python3", "-s", "-c", "import s3_route_agent"],
                          capture_output=True, env=env, cwd=tmp_path)
    assert bare.returncode != 0
    import gzip
    man = gzip.decompress((root / "usr/share/man/man1/s3-route-agent.1.gz").read_bytes()).decode()
    assert ".TH " in man and r"iam\-policy" in man  # roff escapes hyphens
    for unit in UNITS:
        assert (root / "usr/lib/systemd/system" / unit).read_text() == (
            ROOT / "systemd" / unit).read_text()


def _rpm_query(rpm: Path, *args: str) -> str:
    return subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True,
                          check=True).stdout


def test_rpm_contents(packages: dict[str, Path], tmp_path: Path) -> None:
    if "rpm" not in packages:
        pytest.skip("rpmbuild missing (make rpm / make test install Debian's rpm package as root)")
    rpm = packages["rpm"]
    assert _rpm_query(rpm, "--queryformat", "%{NAME} %{ARCH}") == "s3-route-agent noarch"
    assert _rpm_query(rpm, "--configfiles").split() == ["/etc/s3-route-agent/config.yaml"]
    requires = _rpm_query(rpm, "--requires")
    assert "python3 >= 3.9" in requires and "systemd" in requires
    files = set(_rpm_query(rpm, "--list").split())
    for unit in UNITS:
        assert f"/usr/lib/systemd/system/{unit}" in files
    assert {"/opt/s3-route-agent/bin/s3-route-agent", "/usr/bin/s3-route-agent",
            "/usr/lib/sysusers.d/s3-route-agent.conf"} <= files
    assert not [f for f in files if f.startswith("/etc/systemd") or f.endswith(".so")]
    scripts = _rpm_query(rpm, "--scripts")
    assert "systemd-sysusers" in scripts and "enable" not in scripts
    # Unpacked into a throwaway root (no scripts: rpm would chroot into an empty root).
    root = tmp_path / "root"
    root.mkdir()
    install = subprocess.run(["rpm", "--root", str(root), "--initdb"], capture_output=True,
                             text=True)
    assert install.returncode == 0, install.stderr
    unpack = subprocess.run(["rpm", "--root", str(root), "--install", "--nodeps", "--noscripts",
                             str(rpm)], capture_output=True, text=True, timeout=180)
    assert unpack.returncode == 0, unpack.stderr
    assert (root / "opt/s3-route-agent/lib/s3_route_agent/cli.py").exists()
