"""Every route of the admin listener, as its URL map lists it (not a hand-written
list): an account without ADMIN is refused each one, and nothing is served from a
static folder of the daemon's working directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from leosuite.api.admin.app import create_admin_app
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import assert_admin_error

#: Served to anyone who may reach the listener: the API's own description.
PUBLIC = "openapi.json"


def concrete(rule: str) -> str:
    """The rule's path with every variable part filled in (a number fits each)."""
    return re.sub(r"<[^>]+>", "1", rule)


async def test_a_non_admin_account_is_refused_every_route(daemon: RunningDaemon) -> None:
    await add_account(daemon, "moderator", "MOD", "HOST")
    app = create_admin_app(daemon.ctx)
    checked = 0
    with trio.fail_after(120):
        async with daemon.admin(auth=("moderator", PASSWORD)) as client:
            for rule in app.url_map.iter_rules():
                path = concrete(rule.rule)
                if path.rstrip("/").endswith(PUBLIC):
                    continue
                for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                    response = await client.request(method, path, json={})
                    message = assert_admin_error(response, 403)
                    assert "not an administrator" in message, (method, path)
                    checked += 1
    assert checked > 100  # every spelling of every call, plural paths included


async def test_no_static_folder_is_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "secret.txt").write_text("not for anyone")
    monkeypatch.chdir(tmp_path)
    with trio.fail_after(30):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            for client in (daemon.http(), daemon.admin()):
                async with client:
                    response = await client.get("/static/secret.txt")
                    assert response.status_code == 404, response.text
                    assert "not for anyone" not in response.text
