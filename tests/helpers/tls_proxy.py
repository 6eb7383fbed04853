"""A real nginx (Debian's package) with a self-signed certificate in front of a real
daemon, configured with the site of docs/proxy.md: started as the test's own child
with its own prefix and config in a temporary directory, killed at the end."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.daemon import base_env
from tests.helpers.daemon_process import PASSWORD, serve_argv

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "docs" / "proxy.md"
#: The public name; the browser and the clients map it to 127.0.0.1.
PUBLIC_NAME = "games.leosuite.test"
ADMIN_PASSWORD = PASSWORD


def nginx_binary() -> str:
    """Debian's nginx, or a skip that says how to get it (scripts/test installs it)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.skip("nginx is not installed: apt-get install nginx-light (scripts/test does)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: apt-get install openssl")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def self_signed_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` and 127.0.0.1 (its own CA), and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"),
            *("-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def client_tls(cert: Path) -> ssl.SSLContext:
    """A client context that trusts exactly ``cert``."""
    return ssl.create_default_context(cafile=str(cert))


def recipe_site() -> str:
    """The first ``nginx`` block of docs/proxy.md: the site an operator installs."""
    found = re.search(r"```nginx\n(.*?)```", RECIPE.read_text(), re.DOTALL)
    assert found is not None, "docs/proxy.md has no nginx block"
    return found.group(1)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the recipe no longer says {old!r}"
    return text.replace(old, new)


def site_config(port: int, http: str, ws: str, cert: Path, key: str | Path) -> str:
    """The recipe's site for this machine: the test's port, certificate and daemon."""
    site = recipe_site()
    site = _replace(site, "games.example.org", PUBLIC_NAME)
    site = _replace(site, "    listen 443 ssl;\n", f"    listen 127.0.0.1:{port} ssl;\n")
    site = _replace(site, "    listen [::]:443 ssl;\n", "")
    live = f"/etc/letsencrypt/live/{PUBLIC_NAME}"
    site = _replace(site, f"{live}/fullchain.pem", str(cert))
    site = _replace(site, f"{live}/privkey.pem", str(key))
    site = _replace(site, "http://127.0.0.1:8975", http)
    return _replace(site, "http://127.0.0.1:8976/", ws.replace("ws://", "http://") + "/")


def _main_config(prefix: Path, site: str) -> str:
    """nginx.conf around ``site``: one foreground process, everything under ``prefix``."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        "daemon off;\nmaster_process off;\n"
        f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {prefix / 'access.log'};\n{temp}\n" + site + "}\n"
    )


@contextmanager
def running_nginx(prefix: Path, site: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """nginx with ``site``, listening on 127.0.0.1:``port``; killed at the end."""
    binary = nginx_binary()
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(_main_config(prefix, site))
    errors = prefix / "error.log"
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(errors)]
    checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, f"nginx exited:\n{errors.read_text()}"
            assert time.monotonic() < deadline, f"nginx did not listen:\n{errors.read_text()}"
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield proc
    finally:
        proc.kill()
        proc.wait()


@dataclass
class ProxiedDaemon:
    """A daemon behind nginx: ``public`` is the URL browsers use."""

    data_dir: Path
    endpoints: dict[str, str]
    public: str
    cert: Path
    nginx_errors: Path

    @property
    def port(self) -> int:
        return int(self.public.rpartition(":")[2])


def _start_daemon(data_dir: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            serve_argv(data_dir),
            env=base_env(LEOSUITE_ADMIN_PASSWORD=ADMIN_PASSWORD, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _endpoints(proc: subprocess.Popen[bytes], data_dir: Path, log: Path) -> dict[str, str]:
    path = data_dir / "run" / "endpoints.json"
    deadline = time.monotonic() + 30
    while not path.exists():
        assert proc.poll() is None, f"leosuite serve exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"leosuite serve did not start:\n{log.read_text()}"
        time.sleep(0.05)
    found: dict[str, str] = json.loads(path.read_text())
    return found


@contextmanager
def proxied_daemon(tmp_path: Path, **env: str) -> Iterator[ProxiedDaemon]:
    """``leosuite serve`` (public URL ``https://games.leosuite.test:<port>``, nginx at
    127.0.0.1 trusted) behind nginx with the recipe's site; both stopped at the end."""
    nginx_binary()
    port = free_port()
    public = f"https://{PUBLIC_NAME}:{port}"
    cert, key = self_signed_certificate(tmp_path, PUBLIC_NAME)
    data_dir, log = tmp_path / "data", tmp_path / "daemon.log"
    settings = {
        "LEOSUITE_HTTP_PUBLIC_URL": public,
        "LEOSUITE_HTTP_TRUSTED_PROXIES": "127.0.0.1",
        **env,
    }
    proc = _start_daemon(data_dir, log, settings)
    try:
        endpoints = _endpoints(proc, data_dir, log)
        site = site_config(port, endpoints["http"], endpoints["ws"], cert, key)
        prefix = tmp_path / "nginx"
        with running_nginx(prefix, site, port):
            yield ProxiedDaemon(data_dir, endpoints, public, cert, prefix / "error.log")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
