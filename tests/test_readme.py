"""Issue 12: the README has a table of contents that matches its headings, and its links inside
the page lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _headings(text: str) -> list[str]:
    """Level 2 and 3 headings outside code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"^#{2,3} ", line):
            out.append(line)
    return out


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_table_of_contents_lists_every_heading_in_order() -> None:
    text = README.read_text()
    toc = text[text.index("## Contents"):text.index("\n## ", text.index("## Contents") + 1)]
    entries = re.findall(r"^( *)- \[([^\]]+)\]\(#([^)]+)\)$", toc, re.MULTILINE)
    headings = [h for h in _headings(text) if h != "## Contents"]
    assert [(("  " if h.startswith("### ") else ""), h.lstrip("#").strip(),
             anchor(h.lstrip("#").strip())) for h in headings] == entries


def test_links_inside_the_readme_resolve() -> None:
    text = README.read_text()
    anchors = {anchor(h.lstrip("#").strip()) for h in _headings(text)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and not links - anchors, links - anchors


def test_quick_start_walks_through_install_policy_config_check_enable() -> None:
    text = README.read_text()
    quick = text[text.index("## Quick start on an EC2 host"):text.index("## Command line")]
    steps = re.findall(r"^\d\. \*\*([^*]+)\*\*", quick, re.MULTILINE)
    assert steps == ["Install.", "Grant the instance role the agent's calls.",
                     "Write the config.", "Check once.", "Enable."]
    for command in ("make deb", "iam-policy", "s3-route-agent init", "validate-config",
                    "s3-route-agent check", "systemctl enable --now s3-route-agent"):
        assert command in quick, command
