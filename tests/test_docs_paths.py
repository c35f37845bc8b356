"""Every file the README, the docs and the CLI point users at exists in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hetflow.cli import app

ROOT = Path(__file__).resolve().parents[1]
#: markdown links/images, repository paths under docs/, and upper-case document names (FOO.md)
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
DOC_PATH = re.compile(r"(?<![\w/.-])((?:docs|bench|tests|hetflow)/[\w./-]*\.[a-z]{1,5})\b")
LINK_TEXT = re.compile(r"\[[^\]]*\]")
UPPER_MD = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9_-]*\.md)\b")


def referenced(text: str, base: Path) -> set[Path]:
    out = set()
    for m in LINK.finditer(text):
        target = m.group(1)
        if not re.match(r"^[a-z]+://", target):
            out.add((base / target).resolve())
    for m in DOC_PATH.finditer(text):
        if "<" not in m.group(1) and "*" not in m.group(1):
            out.add((ROOT / m.group(1)).resolve())
    for m in UPPER_MD.finditer(LINK_TEXT.sub(" ", text)):
        out.add((ROOT / m.group(1)).resolve())  # a bare FOO.md means the repository root
    return out


def _missing(paths: set[Path]) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths if not p.exists())


def test_referencer_finds_and_can_fail(tmp_path):
    refs = referenced("see [x](docs/NOPE.md), docs/img/a.png and SCIENCE.md; output repro/s1.md", ROOT)
    assert {p.name for p in refs} == {"NOPE.md", "a.png", "SCIENCE.md"}
    assert _missing(refs)  # none of these exist


def test_readme_and_docs_name_only_existing_files():
    docs = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(docs) >= 5
    for f in docs:
        base = f.parent
        text = f.read_text()
        # bare FOO.md inside docs/ means docs/FOO.md: resolve those links relative to the file
        refs = {p for p in referenced(text, base)}
        if f.parent.name == "docs":
            refs = {(base / p.name) if p.parent == ROOT and p.suffix == ".md" and (base / p.name).exists() else p
                    for p in refs}
        assert not _missing(refs), f"{f.name} names missing files: {_missing(refs)}"


def _all_help(group: click.Group, prefix: list[str]) -> list[tuple[list[str], str]]:
    out = []
    for name, cmd in group.commands.items():
        args = prefix + [name]
        r = CliRunner().invoke(app, args + ["--help"])
        assert r.exit_code == 0, (args, r.output)
        out.append((args, r.output))
        if isinstance(cmd, click.Group):
            out += _all_help(cmd, args)
    return out


def test_cli_names_only_existing_files():
    texts = [(["--help"], CliRunner().invoke(app, ["--help"]).output), *_all_help(app, [])]
    for args in (["phases"], ["phases", "--json"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0
        texts.append((args, r.output))
    assert any("docs/PHASES.md" in t for _, t in texts)
    for args, text in texts:
        assert not _missing(referenced(text, ROOT)), f"hetflow {' '.join(args)} names missing files"


@pytest.mark.parametrize("name, fact", [("SCIENCE.md", "4.32"), ("PHASES.md", "mp-540839"),
                                        ("MEASUREMENTS.md", "OpenBLAS")])
def test_science_docs_are_in_the_repository(name, fact):
    text = (ROOT / "docs" / name).read_text()
    assert len(text) > 3000 and fact in text
