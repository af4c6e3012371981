"""Config validation: the example loads, and every mistake names its key path and line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from s3_route_agent.config import (config_reference, declared_keys, load_config, parse_config,
                                   targets_for)
from s3_route_agent.errors import ConfigError
from s3_route_agent.engine.model import Expect

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "s3-route-agent.example.yaml"


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert config.aws.region == "eu-west-1"
    assert config.buckets == ("my-app-data",)
    assert [t.name for t in config.targets] == ["regional", "legacy-global"]
    assert config.inventory.ttl_seconds == 14400 and config.inventory.route_check_seconds == 900
    hosts = [t.host for t in targets_for(config, "eu-west-1")]
    assert hosts == ["s3.eu-west-1.amazonaws.com", "my-app-data.s3.amazonaws.com"]


def test_defaults_without_targets():
    config = parse_config("buckets: [logs]\n")
    targets = targets_for(config, "eu-west-1")
    assert [t.host for t in targets] == [
        "s3.eu-west-1.amazonaws.com", "s3.amazonaws.com",
        "logs.s3.eu-west-1.amazonaws.com", "logs.s3.amazonaws.com"]
    assert all(t.expect is Expect.PRIVATE for t in targets)
    assert targets[2].bucket == "logs"


def test_empty_file_is_all_defaults():
    config = parse_config("")
    assert config.dns.port == 53 and config.targets == ()


BAD = [
    ("aws:\n  region: eu-west-1\n  regoin: x\n", "aws.regoin (line 3): unknown key"),
    ("dns:\n  port: fifty\n", "dns.port (line 2): must be a whole number"),
    ("dns:\n  port: 70000\n", "dns.port (line 2): must be at most 65535"),
    ("aws:\n  region: mars-north-1\n", "aws.region (line 2): unknown AWS region 'mars-north-1'"),
    ("aws:\n  region: Europe\n", "is not an AWS region name"),
    ("targets:\n  - name: a\n    host: s3.amazonaws.com\n    expect: privat\n",
     "targets[0].expect (line 4): must be one of gateway, interface, private, public, any"),
    ("targets:\n  - host: s3.amazonaws.com\n", "targets[0].name"),
    ("targets:\n  - {name: a, host: 'bad host'}\n", "is not a hostname"),
    ("targets:\n  - {name: a, host: x.com}\n  - {name: a, host: y.com}\n", "duplicate name(s) a"),
    ("transfer:\n  enabled: yes please\n", "transfer.enabled (line 2): must be a boolean"),
    ("buckets: logs\n", "buckets (line 1): must be a list"),
    ("- a\n- b\n", "must be a mapping"),
    ("aws: {region: [\n", "malformed YAML"),
    ("imds:\n  token_ttl_seconds: 99999\n", "must be at most 21600"),
    ("dns:\n  timeout_seconds: .nan\n", "dns.timeout_seconds (line 2): must be a finite number"),
    ("inventory:\n  ttl_seconds: .inf\n", "inventory.ttl_seconds (line 2): must be a finite"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_config_names_key_and_line(text, message):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.yaml")
    assert message in info.value.message
    assert "\n" not in info.value.message
    assert info.value.message.startswith("cfg.yaml")


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read config" in info.value.message


@pytest.mark.parametrize("text,message", [
    ("aws:\n  region: !foo x\n", "aws.region (line 2)"),
    ("dns:\n  port: !!int fifty\n", "dns.port (line 2)"),
    ("? [a, b]\n: 1\n", "(line 1): unknown key"),
], ids=["unknown tag", "bad explicit tag", "non-scalar key"])
def test_yaml_tags_and_complex_keys_are_config_errors(text, message):
    """What the schema cannot read is a one-line ConfigError naming the line, not a crash."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.yaml")
    assert message in info.value.message and "\n" not in info.value.message


def test_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"aws:\n  region: \xe9u-west-1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "cannot read config" in info.value.message and "UTF-8" in info.value.message


# ---- each key declared once: what the declarations give ----------------------------------------

def _flat(value, prefix=""):
    """Dotted key paths of a parsed YAML document (list items of mappings as ``key[].``)."""
    out = set()
    for key, item in (value or {}).items():
        path = f"{prefix}{key}"
        if isinstance(item, dict):
            out |= _flat(item, path + ".")
        elif isinstance(item, list) and item and isinstance(item[0], dict):
            for entry in item:
                out |= _flat(entry, path + "[].")
        else:
            out.add(path)
    return out


def test_every_declared_key_has_a_description_and_a_default():
    keys = list(declared_keys())
    assert len(keys) >= 70
    for key in keys:
        assert key.rule.doc and "\n" not in key.rule.doc, key.path


def test_example_config_names_every_declared_key():
    """The commented example shows every key (and no other: it loads)."""
    import yaml
    shown = _flat(yaml.safe_load(EXAMPLE.read_text()))
    assert shown == {k.path for k in declared_keys()}


def test_readme_config_table_is_the_declared_reference():
    """The README's table is config_reference()'s output, between its markers."""
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    start = readme.index("<!-- config-reference")
    table = readme[readme.index("\n", start) + 1:readme.index("<!-- /config-reference -->")]
    assert table.strip() == config_reference(), (
        "regenerate the README table: python -c 'from s3_route_agent.config import "
        "config_reference; print(config_reference())'")


def test_defaults_come_from_the_declarations():
    """A key left out takes the declared default, in every section."""
    config = parse_config("")
    for key in declared_keys():
        if "[]" in key.path or key.default is dataclasses.MISSING:
            continue
        value = config
        for part in key.path.split("."):
            value = getattr(value, part)
        assert value == key.default, key.path


def _readme_table_rows() -> list[list[str]]:
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    start = readme.index("<!-- config-reference")
    table = readme[readme.index("\n", start) + 1:readme.index("<!-- /config-reference -->")]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in table.strip().splitlines()[2:]]


def test_readme_config_table_is_complete():
    """Issue 12: every declared key has exactly one row of the README's table, with its default
    and meaning filled in, and the table names no key that is not declared."""
    rows = _readme_table_rows()
    keys = [row[0].strip("`") for row in rows]
    declared = [k.path for k in declared_keys()]
    assert sorted(keys) == sorted(declared) and len(keys) == len(set(keys))
    assert all(len(row) == 3 and row[1] and row[2] for row in rows), rows
    region = next(row for row in rows if row[0] == "`aws.region`")
    assert "AWS_REGION" in region[1]     # the zero-config order: config, IMDS, environment
