"""Vendored ES modules that import other packages by name (CodeMirror's) are served with
those names rewritten to relative paths; ``scripts/vendor-web --check`` verifies that
every vendored module imports only vendored files, as the manifest records."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from leosuite.api.http.web import WEB_ROOT

ROOT = Path(__file__).resolve().parents[1]
IMPORT = re.compile(r"""^(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]""", re.MULTILINE)


def _check(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(repo / "scripts" / "vendor-web"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    shutil.copytree(WEB_ROOT / "vendor", repo / "leosuite" / "web" / "vendor")
    return repo


def test_vendored_modules_import_vendored_files_only() -> None:
    manifest = json.loads((WEB_ROOT / "vendor" / "manifest.json").read_text())
    rewritten = 0
    for pkg in manifest["packages"]:
        for entry in pkg["files"].values():
            if not entry["to"].endswith((".js", ".mjs")):
                continue
            target = WEB_ROOT / "vendor" / entry["to"]
            for spec in IMPORT.findall(target.read_text()):
                assert spec.startswith(("./", "../")), (entry["to"], spec)
                assert (target.parent / spec).resolve().is_file(), (entry["to"], spec)
            if entry.get("imports"):
                rewritten += 1
                assert entry["source_sha256"] != entry["sha256"]
    # CodeMirror's view, language, commands, grammars: rewritten, not copied as published.
    assert rewritten >= 8


def test_a_bare_import_left_in_a_vendored_module_is_caught(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    vendor = repo / "leosuite" / "web" / "vendor"
    manifest_path = vendor / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    (view,) = [p for p in manifest["packages"] if p["name"] == "@codemirror/view"]
    entry = view["files"]["dist/index.js"]
    target = vendor / entry["to"]
    text = target.read_text().replace("'../state/index.js'", "'@codemirror/state'", 1)
    target.write_text(text)
    # Even with the manifest's hash made to match, the import itself is refused.
    entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    result = _check(repo)
    assert result.returncode == 1
    assert "imports '@codemirror/state', not a vendored file" in result.stderr


def test_an_import_of_a_package_no_longer_vendored_is_caught(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    vendor = repo / "leosuite" / "web" / "vendor"
    manifest_path = vendor / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["packages"] = [p for p in manifest["packages"] if p["name"] != "crelt"]
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(vendor / "crelt")
    result = _check(repo)
    assert result.returncode == 1
    assert "view/index.js: imports ../../crelt/index.js, which is not vendored" in result.stderr
