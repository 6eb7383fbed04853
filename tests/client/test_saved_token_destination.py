"""A saved login's token goes only to the daemon it was saved for: its saved URL, or
the same data directory's daemon restarted on other ports; never to a URL named on
the command line nor to a daemon found through another directory's endpoints."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from leosuite.client.connect import connect
from leosuite.client.http import save_token
from leosuite.errors import AuthError

TOKEN = "ab" * 32


def endpoints(data_dir: Path, http: str) -> None:
    (data_dir / "run").mkdir(parents=True, exist_ok=True)
    record = {"http": http, "ws": "ws://127.0.0.1:9/", "admin": "http://127.0.0.1:8"}
    (data_dir / "run" / "endpoints.json").write_text(json.dumps(record))


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_the_saved_url_and_the_saved_data_directory_get_it(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    mine = tmp_path / "mine"
    endpoints(mine, "http://127.0.0.1:4001")
    save_token("http://127.0.0.1:4000", "admin", TOKEN, environ, data_dir=str(mine))
    # Restarted on another port: found through the saved data directory.
    assert connect(argparse.Namespace(), environ).token == TOKEN
    save_token("http://127.0.0.1:4000", "admin", TOKEN, environ, data_dir=None)
    assert connect(argparse.Namespace(url="http://127.0.0.1:4000"), environ).token == TOKEN


def test_another_url_or_directory_does_not(
    tmp_path: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    save_token("https://a.example", "admin", TOKEN, environ, data_dir=None)
    with pytest.raises(AuthError, match=re.escape("saved login is for https://a.example")):
        connect(argparse.Namespace(url="https://b.example"), environ)
    # A directory with another daemon's endpoints (here: the working directory's
    # default data directory, as an older token file without data_dir would use).
    other = tmp_path / "elsewhere"
    endpoints(other / "leosuite-data", "http://evil.example:80")
    monkeypatch.chdir(other)
    path = save_token("https://a.example", "admin", TOKEN, environ, data_dir=None)
    saved = json.loads(path.read_text())
    del saved["data_dir"]
    path.write_text(json.dumps(saved))
    with pytest.raises(AuthError, match=re.escape("not http://evil.example")):
        connect(argparse.Namespace(), environ)
    with pytest.raises(AuthError):
        connect(argparse.Namespace(data_dir=str(other / "leosuite-data")), environ)
    # A command that needs no token still runs, without one.
    assert (
        connect(argparse.Namespace(url="https://b.example"), environ, need_token=False).token == ""
    )
