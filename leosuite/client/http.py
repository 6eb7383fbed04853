"""A small synchronous client of the HTTP API, for the CLI and scripts, and the file
where ``leosuite login`` saves its token.

Stdlib only (``urllib``); live data comes over the WebSocket API (:mod:`.ws`).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..auth.pow import solve
from ..errors import AuthError, Conflict, InvalidInput, LeosuiteError, NotFound, TooLarge

__all__ = ["ApiError", "HttpClient", "login", "token_file", "load_saved_token", "save_token"]

_BY_STATUS: dict[int, type[LeosuiteError]] = {
    400: InvalidInput,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
}


class ApiError(LeosuiteError):
    """An error answer the client could not map to a more specific class."""


class HttpClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        #: The daemon's WebSocket API URL, as ``/api/auth/config`` says (after :func:`login`).
        self.websocket_url: str | None = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                error = json.loads(payload)
                message = error.get("error_message") or error.get("message") or str(error)
            except (ValueError, AttributeError):
                message = payload.decode(errors="replace")[:200] or exc.reason
            raise _BY_STATUS.get(exc.code, ApiError)(f"{message} (HTTP {exc.code})") from None
        except urllib.error.URLError as exc:
            raise ApiError(
                f"cannot reach leosuite at {self.base_url}: {exc.reason}; "
                "is 'leosuite serve' running?"
            ) from None
        return json.loads(payload) if payload else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, {} if body is None else body)


def login(
    client: HttpClient,
    username: str,
    password: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The seed 001 flow: config, login_info, proof-of-work, login. Sets ``client.token``."""
    config = client.get("/api/auth/config")
    client.websocket_url = config.get("websocket")
    if config.get("type") != "password":
        raise ApiError(f"unsupported auth type {config.get('type')!r}")
    info = client.get("/api/auth/login_info?username=" + urllib.parse.quote(username))
    count, difficulty = info["proof_of_works"], info["difficulty"]
    proofs = solve(
        info["random"],
        count=count,
        difficulty=difficulty,
        progress=(lambda n: progress(n, count)) if progress else None,
    )
    result: dict[str, Any] = client.post(
        "/api/auth/login",
        {
            "username": username,
            "password": password,
            "random": info["random"],
            "proof_of_works": proofs,
        },
    )
    client.token = result["access_token"]
    return result


def token_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")).expanduser() / ".config")
    return base / "leosuite" / "token.json"


def save_token(
    url: str,
    username: str,
    token: str,
    environ: Mapping[str, str] | None = None,
    *,
    ws_url: str | None = None,
    admin_url: str | None = None,
    data_dir: str | None = None,
) -> Path:
    """Save a login; ``data_dir`` is the local data directory of the daemon logged in
    to (saved as null when it is none, so that later commands look for no other)."""
    path = token_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        saved: dict[str, str | None] = {"url": url, "username": username, "token": token}
        if ws_url:
            saved["ws_url"] = ws_url
        if admin_url:
            saved["admin_url"] = admin_url
        saved["data_dir"] = data_dir
        json.dump(saved, handle)
    os.chmod(path, 0o600)
    return path


def load_saved_token(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    try:
        data = json.loads(token_file(environ).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
