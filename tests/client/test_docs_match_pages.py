"""The documentation a user reads: it speaks of features (the protocols the daemon is
compatible with are named on one page), has the pages an operator looks for, links
only to pages and headings that exist, and the systemd unit's ``Documentation=``
names a file that installing the package puts there."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md")])
#: Where README's systemd steps install the program (the unit's ExecStart= too).
PREFIX = Path("/opt/leosuite")


def slug(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub's) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_user_docs_name_no_seed_and_no_origin() -> None:
    """Which protocol each surface follows is said once, in docs/compatibility.md."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for needle in (
            r"\bseeds? \d{3}\b",
            r"\bthe seed(?:'s)?\b",
            r"\bthe origin's\b",
            r"\b(?:as|on) the origin\b",
            r"\bthe origin (?:server|client|did|does|sends|sent)\b",
        ):
            found += [f"{page.name}: {m}" for m in re.findall(needle, text, re.I)]
    assert found == []


def test_the_pages_an_operator_looks_for_exist_and_are_linked() -> None:
    readme = (ROOT / "README.md").read_text()
    for page, words in {
        "upgrading.md": ("migrat", "back up", "reload", "restart"),
        "backup.md": ("WAL", ".backup", "stopped", "Restoring"),
        "troubleshooting.md": ("journalctl", "banned", "locked", "user passwd", "endpoints.json"),
        "compatibility.md": ("Leosac", "Drawpile", "LocalChat", "GameConsole"),
    }.items():
        text = (DOCS / page).read_text()
        assert all(word in text for word in words), page
        assert f"(docs/{page})" in readme, page


def test_every_link_between_pages_resolves() -> None:
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_the_unit_documentation_is_installed_by_the_package() -> None:
    unit = (ROOT / "systemd" / "leosuite.service").read_text()
    targets = re.findall(r"^Documentation=(.+)$", unit, re.M)
    assert targets
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "data-files"
    ]
    installed = {
        PREFIX / where / source.name
        for where, patterns in data_files.items()
        for glob in patterns
        for source in ROOT.glob(glob)
    }
    for target in " ".join(targets).split():
        assert target.startswith("file://"), target
        assert Path(target.removeprefix("file://")) in installed, target
    assert f"ExecStart={PREFIX}/bin/leosuite " in unit
