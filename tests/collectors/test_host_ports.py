"""This host's ephemeral port range (collectors/host_ports.py), from files like the kernel's."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3_route_agent.collectors.host_ports import PORT_RANGE_PATH, read_ephemeral_port_range


@pytest.mark.parametrize("text,expected", [
    ("32768\t60999\n", (32768, 60999)),
    ("1024 65535", (1024, 65535)),
    ("", None),
    ("32768", None),
    ("a b", None),
    ("60999 32768", None),
    ("0 100", None),
    ("1024 70000", None),
])
def test_parse(tmp_path: Path, text: str, expected) -> None:
    path = tmp_path / "ip_local_port_range"
    path.write_text(text)
    assert read_ephemeral_port_range(path) == expected


def test_missing_file_is_unknown(tmp_path: Path) -> None:
    assert read_ephemeral_port_range(tmp_path / "absent") is None


@pytest.mark.skipif(not PORT_RANGE_PATH.exists(), reason="no /proc/sys/net/ipv4 on this host")
def test_this_hosts_range_is_read() -> None:
    low, high = PORT_RANGE_PATH.read_text().split()
    assert read_ephemeral_port_range() == (int(low), int(high))
