"""Issue 12, CLI conventions: global flags anywhere, --log-level in any case, helpful subcommand
help, one flag name per concept, a closed pipe, an IP address for explain (no DNS query),
colour on a terminal only (NO_COLOR), `run` saying when its first cycle starts, and the man page
and bash completion generated from the parser."""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from s3_route_agent.cli import build_parser, use_colour
from s3_route_agent.clidoc import bash_completion, man_page, options, positionals, subcommands
from s3_route_agent.devenv.localenv.environment import LocalEnvironment, safe_environ
from test_cli_check import ROOT, run_cli

PARSER = build_parser()
COMMANDS = subcommands(PARSER)


@pytest.fixture(scope="module")
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment() as local:
        yield local


# ---- parsing ------------------------------------------------------------------------------------

def test_global_flags_are_accepted_after_the_subcommand() -> None:
    args = build_parser().parse_args(["oracle-policy", "--bucket", "b", "--vpce-id", "vpce-1",
                                      "--log-level", "info", "--debug", "-v"])
    assert (args.log_level, args.debug, args.verbose) == ("INFO", True, True)
    # Given before the subcommand, they are not reset by the subcommand's parser.
    args = build_parser().parse_args(["--debug", "--log-level", "Error", "check"])
    assert (args.log_level, args.debug, args.verbose) == ("ERROR", True, False)


def test_log_level_in_any_case_through_the_cli() -> None:
    """Reproduced: `--log-level info` was refused, and so was a global flag after the
    subcommand."""
    proc = run_cli("oracle-policy", "--bucket", "b", "--vpce-id", "vpce-0123456789abcdef0",
                   "--log-level", "info")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["Statement"]
    bad = run_cli("--log-level", "loud", "check")
    assert bad.returncode == 3 and bad.stdout.startswith("S3ROUTE UNKNOWN - argument --log-level")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_help_has_a_description_defaults_and_an_example(name: str) -> None:
    summary, sub = COMMANDS[name]
    text = sub.format_help()
    assert summary and sub.description and len(sub.description) > len(summary) / 2
    assert " ".join(sub.description.split()[:5]) in " ".join(text.split())
    assert "examples:" in text and f"s3-route-agent {name}" in text.split("examples:")[1]
    defaults = [a for a in options(sub) if a.default not in (None, False, [], argparse.SUPPRESS)
                and a.dest not in {"help"}]
    for action in defaults:
        assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)


def test_one_flag_name_per_concept() -> None:
    flags = {flag for _, sub in COMMANDS.values() for a in options(sub)
             for flag in a.option_strings}
    assert {f for f in flags if "vpce" in f} == {"--vpce-id"}
    config_flags = {tuple(a.option_strings) for _, sub in COMMANDS.values()
                    for a in options(sub) if a.dest == "config"}
    assert config_flags == {("--config", "-c")}


def test_a_closed_pipe_ends_quietly() -> None:
    """Reproduced: `oracle-policy | head` sometimes ended in `internal error: BrokenPipeError`.
    Here the reader is gone before the first write, every time."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "s3_route_agent", "oracle-policy",
                               "--bucket", "b", "--vpce-id", "vpce-0123456789abcdef0"],
                              cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True,
                              env=safe_environ(), timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


# ---- explain: an IP address, a name that is not S3 ---------------------------------------------

def test_explain_judges_an_ip_address_without_a_dns_query(env: LocalEnvironment,
                                                           tmp_path: Path) -> None:
    """Reproduced: `explain 10.0.2.50` sent a DNS query for the address."""
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    ip = env.ids.interface_endpoint_ip
    before = env.dns.query_count
    proc = run_cli("explain", ip, "--config", str(config), "--format", "json")
    assert env.dns.query_count == before, env.dns.queries[before:]
    explained = json.loads(proc.stdout)
    assert (explained["path"], proc.returncode) == ("interface", 0), proc.stderr
    name = next(s for s in explained["sections"] if s["title"] == "Name")
    assert "is an IP address" in name["lines"][0] and "no DNS query" in name["lines"][0]
    text = run_cli("explain", ip, "--config", str(config)).stdout
    assert "1. Name" in text and "2. Identity" in text


def test_explain_notes_a_name_that_is_not_s3(env: LocalEnvironment, tmp_path: Path) -> None:
    env.zone.add_a("app.internal.example", "203.0.113.99")
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    proc = run_cli("explain", "app.internal.example", "--config", str(config), "--format", "json")
    name = next(s for s in json.loads(proc.stdout)["sections"] if s["title"] == "Name")
    assert "is not an S3 hostname" in name["lines"][0]


# ---- colour ---------------------------------------------------------------------------------------

class _Tty:
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert use_colour(_Tty(), {}) is True
    assert use_colour(_Tty(), {"NO_COLOR": "1"}) is False
    assert use_colour(_Tty(), {"TERM": "dumb"}) is False
    assert use_colour(_Tty(), {"NO_COLOR": ""}) is True   # no-color.org: set and not empty
    with open(os.devnull, "w") as not_a_tty:
        assert use_colour(not_a_tty, {}) is False


def _check_on_a_pty(config: Path, environ: dict[str, str]) -> str:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "s3_route_agent", "check", "--config",
                                 str(config)], cwd=ROOT, stdout=secondary,
                                stderr=subprocess.DEVNULL, env=environ)
        os.close(secondary)
        chunks = []
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(primary, 65536)
            except OSError:   # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    finally:
        os.close(primary)
    return b"".join(chunks).decode()


def test_text_is_coloured_on_a_terminal_unless_no_color(env: LocalEnvironment,
                                                        tmp_path: Path) -> None:
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"))
    environ = safe_environ()
    environ.pop("NO_COLOR", None)
    environ["TERM"] = "xterm"
    coloured = _check_on_a_pty(config, environ)
    assert "\x1b[31mCRITICAL\x1b[0m legacy-global" in coloured
    assert coloured.startswith("S3ROUTE CRITICAL - ")    # the plugin line is never coloured
    plain = _check_on_a_pty(config, dict(environ, NO_COLOR="1"))
    assert "\x1b[" not in plain and "CRITICAL legacy-global" in plain


# ---- run says when the first cycle starts --------------------------------------------------------

def test_run_says_when_the_first_cycle_starts(env: LocalEnvironment, tmp_path: Path) -> None:
    """Reproduced: `run` waited out its first-cycle jitter in silence."""
    config = env.write_config(tmp_path / "c.yaml", state_dir=str(tmp_path / "state"),
                              daemon={"interval_seconds": 600, "jitter_seconds": 0.5})
    proc = run_cli("run", "--config", str(config), "--max-cycles", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    wait = next(line for line in lines if "first cycle" in line)
    assert wait.startswith("s3-route-agent: INFO: first cycle in ") and "jitter_seconds" in wait
    assert any("first cycle started" in line for line in lines)


# ---- man page and completion from the parser -------------------------------------------------------

def _every_flag() -> set[str]:
    flags = {f for a in options(PARSER) for f in a.option_strings}
    for _, sub in COMMANDS.values():
        flags.update(f for a in options(sub) for f in a.option_strings)
    return flags


def test_man_page_names_every_subcommand_and_flag() -> None:
    page = man_page(PARSER)
    assert page.startswith(".TH S3\\-ROUTE\\-AGENT 1 ")
    unescaped = page.replace("\\-", "-")
    for name, (_, sub) in COMMANDS.items():
        assert f".SS {name}" in unescaped, name
        for action in positionals(sub):
            assert (action.metavar or action.dest) in unescaped, (name, action.dest)
    missing = [flag for flag in _every_flag() if f"\\fB{flag}\\fR" not in unescaped]
    assert not missing, missing
    if shutil.which("groff"):
        out = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page, text=True,
                             capture_output=True, timeout=60)
        assert out.returncode == 0 and not out.stderr.strip(), out.stderr


def test_bash_completion_names_every_subcommand_and_flag_and_completes() -> None:
    script = bash_completion(PARSER)
    for name in COMMANDS:
        assert f"        {name})" in script, name
    missing = [flag for flag in _every_flag() if flag not in script]
    assert not missing, missing
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed: the script's behaviour is not run")

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        program = (f"{script}\nCOMP_WORDS=(s3-route-agent {line}); "
                   f"COMP_CWORD={len(words)}; _s3_route_agent; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        out = subprocess.run([bash, "--norc", "-c", program], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert complete("ch") == ["check"]
    assert "--refresh" in complete("check", "--re")
    assert complete("check", "--format", "") == ["json", "text"]
    assert "--vpce-id" in complete("presign", "--vp")
    assert complete("--log-level", "DEBUG", "explain", "--expect", "gate") == ["gateway"]


def test_the_cli_prints_both() -> None:
    assert run_cli("man").stdout.startswith(".TH ")
    assert "complete -F _s3_route_agent s3-route-agent" in run_cli("completion", "bash").stdout
