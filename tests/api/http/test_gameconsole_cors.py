"""CORS on ``/service`` for the origins of ``http.cors_origins``, and for nothing else;
the two settings' validation."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from leosuite.api.http.cors import normal_origin
from leosuite.errors import ConfigError
from leosuite.settings import Settings, load_settings
from tests.helpers.daemon import RunningDaemon, make_settings
from tests.helpers.gameconsole import CLIENT_ORIGIN, GameConsole

OTHER_ORIGIN = "http://evil.example.net"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # listed in another spelling than the browser's: upper case and the default port
    listed = ["HTTP://Console.Example.org:8080", "https://admin.example.org:443"]
    return make_settings(
        tmp_path / "data", http={"gameconsole_service": True, "cors_origins": listed}
    )


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


async def preflight(client: httpx.AsyncClient, origin: str, path: str) -> httpx.Response:
    """What a browser sends before the client's JSON POST."""
    return await client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


async def test_preflight_from_a_listed_origin(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            for path in ("/service", "/service?service=password"):
                response = await preflight(client, CLIENT_ORIGIN, path)
                assert response.status_code == 204
                assert response.content == b""
                headers = cors_headers(response)
                assert headers["access-control-allow-origin"] == CLIENT_ORIGIN
                assert "POST" in headers["access-control-allow-methods"].split(", ")
                allowed = headers["access-control-allow-headers"].lower().split(", ")
                assert "content-type" in allowed
                assert int(headers["access-control-max-age"]) > 0
                assert "access-control-allow-credentials" not in headers
                assert "Origin" in response.headers["Vary"]
            other = await preflight(client, "https://admin.example.org", "/service")
            assert other.headers["Access-Control-Allow-Origin"] == "https://admin.example.org"


async def test_nothing_for_an_unlisted_origin(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            for origin in (
                OTHER_ORIGIN,
                "http://console.example.org:8081",
                "https://console.example.org:8080",
                "null",
                "http://console.example.org:8080.evil.net",
            ):
                response = await preflight(client, origin, "/service")
                assert response.status_code == 204
                assert cors_headers(response) == {}, origin
                gc = GameConsole(client, origin)
                config = await gc.config()
                assert config.status_code == 200
                assert cors_headers(config) == {}, origin


async def test_answers_name_the_listed_origin(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            gc = GameConsole(client)
            config = await gc.config()
            assert config.headers["Access-Control-Allow-Origin"] == CLIENT_ORIGIN
            seed = await gc.post({}, "password")
            assert seed.headers["Access-Control-Allow-Origin"] == CLIENT_ORIGIN
            # errors too, so the page can read why
            refused = await gc.act("management", "status")
            assert refused.status_code == 403
            assert refused.headers["Access-Control-Allow-Origin"] == CLIENT_ORIGIN
            missing = await client.get(
                "/service", params={"service": "bogus"}, headers={"Origin": CLIENT_ORIGIN}
            )
            assert missing.status_code == 404
            assert missing.headers["Access-Control-Allow-Origin"] == CLIENT_ORIGIN
            # no Origin (not a browser): no CORS headers, the same answer
            plain = await GameConsole(client, None).config()
            assert plain.json() == config.json()
            assert cors_headers(plain) == {}


async def test_nothing_else_is_opened(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            for path in ("/api/server_list", "/api/auth/login", "/rooms", "/api/auth/config"):
                response = await preflight(client, CLIENT_ORIGIN, path)
                assert cors_headers(response) == {}, path
                answer = await client.post(path, json={}, headers={"Origin": CLIENT_ORIGIN})
                assert cors_headers(answer) == {}, path
            for path in ("/api/auth/config", "/openapi.json", "/", "/service/x"):
                answer = await client.get(path, headers={"Origin": CLIENT_ORIGIN})
                assert cors_headers(answer) == {}, path


async def test_a_foreign_host_is_still_refused(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            response = await client.get(
                "/service",
                params={"service": "config"},
                headers={"Origin": CLIENT_ORIGIN, "Host": "console.example.org:8080"},
            )
            assert response.status_code == 421


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("http://console.example.org:8080", "http://console.example.org:8080"),
        ("HTTPS://Console.Example.ORG:443", "https://console.example.org"),
        ("http://127.0.0.1:80/", "http://127.0.0.1"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("null", None),
        ("file://", None),
        ("http://", None),
        ("http://a b", None),
        ("http://host:99999", None),
    ],
)
def test_normal_origin(given: str, normal: str | None) -> None:
    assert normal_origin(given) == normal


@pytest.mark.parametrize(
    "origin",
    [
        "console.example.org",
        "https://console.example.org/",
        "https://console.example.org/path",
        "ftp://console.example.org",
        "*",
        "null",
        "https://user@console.example.org",
        "https://",
    ],
)
def test_cors_origins_must_be_origins(origin: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(None, environ={}, overrides={"http": {"cors_origins": [origin]}})
    assert refused.value.field == "http.cors_origins"


def test_settings_from_the_environment() -> None:
    settings = load_settings(
        None,
        environ={
            "LEOSUITE_HTTP_GAMECONSOLE_SERVICE": "true",
            "LEOSUITE_HTTP_CORS_ORIGINS": "https://a.example.org, http://b.example.org:8080",
        },
    )
    assert settings.http.gameconsole_service is True
    assert settings.http.cors_origins == ["https://a.example.org", "http://b.example.org:8080"]
    defaults = load_settings(None, environ={})
    assert defaults.http.gameconsole_service is False
    assert defaults.http.cors_origins == []
