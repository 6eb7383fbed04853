"""``leosuite.client``'s public surface is exactly what the docs describe, and the
daemon never imports the client package (only the command line's entry point does,
when it runs a client command)."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import leosuite.client

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "leosuite"

#: Every public name and the module it is defined in.
PUBLIC = {
    "ApiError": "leosuite.client.http",
    "ConsoleData": "leosuite.client.ws_console",
    "ConsoleEvent": "leosuite.client.ws_console",
    "ConsoleOverrun": "leosuite.client.ws_console",
    "ConsoleStream": "leosuite.client.ws_console",
    "HttpClient": "leosuite.client.http",
    "Push": "leosuite.client.ws_console",
    "WsCallError": "leosuite.client.ws",
    "WsClient": "leosuite.client.ws",
    "WsConnectionError": "leosuite.client.ws",
    "load_saved_token": "leosuite.client.http",
    "login": "leosuite.client.http",
    "open_ws_client": "leosuite.client.ws",
    "save_token": "leosuite.client.http",
    "token_file": "leosuite.client.http",
}


def test_all_is_the_documented_list() -> None:
    assert sorted(leosuite.client.__all__) == sorted(PUBLIC)
    assert len(set(leosuite.client.__all__)) == len(leosuite.client.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_name_is_importable_from_the_package(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from leosuite.client import {name}", namespace)
    home = importlib.import_module(PUBLIC[name])
    assert namespace[name] is getattr(home, name)
    assert name in dir(leosuite.client)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'WsServer'"):
        _ = leosuite.client.WsServer  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from leosuite.client import WsServer", {})


def _code_spans() -> str:
    """The inline code of README.md and docs/api.md (fenced blocks left out)."""
    text = "\n".join((ROOT / doc).read_text() for doc in ("README.md", "docs/api.md"))
    prose = re.sub(r"(?ms)^```.*?^```", "", text)
    return "\n".join(re.findall(r"`([^`]+)`", prose))


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_name_is_documented(name: str) -> None:
    assert re.search(rf"\b{name}\b", _code_spans()), f"{name} is in no code span of the docs"
    assert "leosuite.client" in _code_spans()


def test_http_only_use_does_not_load_trio() -> None:
    """The HTTP client and the command wiring start without trio; the WebSocket names
    bring it in when first used."""
    probe = (
        "import sys, leosuite.client, leosuite.client.cli\n"
        "print('trio' in sys.modules)\n"
        "from leosuite.client import WsClient\n"
        "print('trio' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.split() == ["False", "True"]


def _imported_modules(path: Path) -> list[tuple[str, bool]]:
    """Every module ``path`` imports, resolved to an absolute name, and whether the
    import sits at module level."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(node) for node in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [f"{base}.{alias.name}" for alias in node.names]
            found += [(name, id(node) in top_level) for name in [base, *names]]
    return found


def test_the_daemon_never_imports_the_client() -> None:
    importers: dict[str, set[bool]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "client") in path.parents:
            continue
        for name, top_level in _imported_modules(path):
            if name == "leosuite.client" or name.startswith("leosuite.client."):
                importers.setdefault(str(path.relative_to(ROOT)), set()).add(top_level)
    assert importers == {"leosuite/cli.py": {False}}  # lazily, to run a client command


def test_the_import_scan_sees_relative_imports() -> None:
    found = dict(_imported_modules(PACKAGE / "cli.py"))
    assert found["leosuite.client.cli"] is False
    assert found["leosuite.errors"] is True
