"""``leosuite config show`` and ``leosuite config reset`` as real processes against a
real daemon's store: a setting the admin API stored is shown as the value in effect
with its source, and reset on a stopped daemon only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import trio

from tests.helpers.daemon import base_env, store_env
from tests.helpers.daemon_process import PASSWORD, serving
from tests.helpers.store import store_sql


async def cli(*argv: str, **env: str) -> tuple[int, str, str]:
    result = await trio.run_process(
        [sys.executable, "-m", "leosuite", *argv],
        env=base_env(**env),
        check=False,
        capture_stdout=True,
        capture_stderr=True,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def stored(data_dir: Path) -> list[str]:
    rows = store_sql(data_dir, "SELECT key FROM kv WHERE key LIKE 'server_settings.%' ORDER BY key")
    return [key for (key,) in rows]


async def test_show_marks_stored_values_and_reset_needs_a_stopped_daemon(tmp_path: Path) -> None:
    config = tmp_path / "leosuite.toml"
    config.write_text("[community]\nsession_count_limit = 42\n")
    data = tmp_path / "data"
    where = ["--config", str(config), "--data-dir", str(data)]
    store = store_env(data)  # the daemon's store, on the run's back-end
    with trio.fail_after(90):
        async with serving(tmp_path, "--config", str(config)) as served:
            endpoints = await served.wait_generation(0)
            async with httpx.AsyncClient(
                base_url=endpoints["admin"], auth=("admin", PASSWORD), timeout=10
            ) as client:
                response = await client.put(
                    "/server/",
                    json={"sessionCountLimit": 7, "idleTimeLimit": "2h", "serverTitle": "Ours"},
                )
                assert response.status_code == 200, response.text

            code, out, err = await cli(
                "config", "show", *where, LEOSUITE_COMMUNITY_ALLOW_GUESTS="0", **store
            )
            assert (code, err) == (0, "")
            assert "session_count_limit = 7  # admin API; without it 42 (file)\n" in out
            assert "idle_time_limit = 7200.0  # admin API; without it 21600.0 (default)\n" in out
            assert "allow_guests = false  # env LEOSUITE_COMMUNITY_ALLOW_GUESTS\n" in out
            assert 'welcome_message = ""  # default\n' in out
            assert f'data_dir = "{data}"  # flag\n' in out
            assert '# serverTitle = "Ours" (admin API)\n' in out
            assert '# clientTimeout = "60s" (default)\n' in out

            code, out, err = await cli("config", "show", "--json", *where, **store)
            assert (code, err) == (0, "")
            assert json.loads(out)["community"]["session_count_limit"] == 7
            code, out, err = await cli("config", "show", "--json", "--sources", *where, **store)
            assert (code, err) == (0, "")
            shown = json.loads(out)
            assert shown["settings"]["community"]["idle_time_limit"] == 7200.0
            assert shown["sources"]["community.session_count_limit"] == "admin API"
            assert shown["sources"]["community.session_size_limit"] == "default"
            assert shown["server_settings"]["serverTitle"] == {
                "value": "Ours",
                "source": "admin API",
            }

            code, out, err = await cli("config", "reset", *where, **store)
            assert code == 1
            assert f"(pid {served.proc.pid})" in err
            assert "DELETE /server/" in err
            assert len(stored(data)) == 3
            assert await served.terminate() == 0

    with trio.fail_after(30):
        code, out, err = await cli(
            "config", "reset", "sessionCountLimit", "archive", *where, **store
        )
        assert (code, err) == (0, "")
        assert out.startswith("reset: sessionCountLimit (")
        assert stored(data) == ["server_settings.idleTimeLimit", "server_settings.serverTitle"]
        code, out, err = await cli("config", "show", *where, **store)
        assert "session_count_limit = 42  # file\n" in out
        assert "idle_time_limit = 7200.0  # admin API" in out

        code, out, err = await cli("config", "reset", "ruleText", *where, **store)
        assert code == 1
        assert "no server setting is named 'ruleText'" in err
        code, out, err = await cli("config", "reset", "--json", *where, **store)
        assert (code, err) == (0, "")
        assert json.loads(out) == {"reset": ["idleTimeLimit", "serverTitle"]}
        assert stored(data) == []
    rows = store_sql(
        data, "SELECT user_name, message FROM audit_log WHERE message LIKE 'server settings reset%'"
    )
    assert rows == [
        ("leosuite config reset", "server settings reset: sessionCountLimit"),
        ("leosuite config reset", "server settings reset: idleTimeLimit, serverTitle"),
    ]


async def test_show_creates_no_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio.fail_after(30):
        code, out, err = await cli("config", "show", "--data-dir", str(data))
        assert (code, err) == (0, "")
        assert "session_count_limit = 100  # default\n" in out
        code, out, err = await cli("config", "reset", "--data-dir", str(data))
        assert (code, err) == (0, "")
        assert out.startswith("nothing to reset")
    assert not data.exists()
