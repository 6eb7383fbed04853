"""The dashboard's files: every file a page or module refers to exists in the package,
and the vendored libraries match their manifest (licence included)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from leosuite.api.http.web import CONTENT_TYPES, WEB_ROOT

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"""["'](/ui/[^"'?#]+)["']""")
RELATIVE_IMPORT = re.compile(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""")


def test_every_referenced_file_exists() -> None:
    sources = [WEB_ROOT / "index.html", *sorted((WEB_ROOT / "js").glob("*.js"))]
    checked = 0
    for source in sources:
        text = source.read_text()
        for ref in REFERENCE.findall(text):
            assert (WEB_ROOT / ref.removeprefix("/ui/")).is_file(), f"{source.name}: {ref}"
            checked += 1
        for ref in RELATIVE_IMPORT.findall(text):
            assert (source.parent / ref).resolve().is_file(), f"{source.name}: {ref}"
            checked += 1
    assert checked > 10


def test_every_file_has_a_served_type() -> None:
    for path in WEB_ROOT.rglob("*"):
        if path.is_file() and path.name != "manifest.json":
            assert path.suffix in CONTENT_TYPES, path


def test_vendored_libraries_match_manifest() -> None:
    manifest = json.loads((WEB_ROOT / "vendor" / "manifest.json").read_text())
    names = {pkg["name"] for pkg in manifest["packages"]}
    assert {"@xterm/xterm", "uplot", "js-sha256"} <= names
    for pkg in manifest["packages"]:
        assert pkg["version"], pkg
        assert pkg["license"], pkg
        assert pkg["integrity"].startswith("sha512-"), pkg
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "vendor-web"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_changed_vendored_file_is_caught(tmp_path: Path) -> None:
    """--check really compares bytes: a copy of the tree with one byte changed fails."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    shutil.copytree(WEB_ROOT / "vendor", copy / "leosuite" / "web" / "vendor")
    target = copy / "leosuite" / "web" / "vendor" / "uplot" / "uPlot.esm.js"
    target.write_bytes(target.read_bytes() + b"\n")
    result = subprocess.run(
        [sys.executable, str(copy / "scripts" / "vendor-web"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "uPlot.esm.js: differs from the manifest" in result.stderr
