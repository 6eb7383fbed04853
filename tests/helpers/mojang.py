"""A stand-in for Mojang's download servers on 127.0.0.1 (no network in tests): a
version manifest, each version's JSON and its "server jar", which is a small Python
program that talks like a Minecraft server; and a ``java`` that runs such a jar."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: A "server jar": as Minecraft, writes server.properties on its first start and reads
#: it; prints what the minecraft type's ready pattern looks for, answers "list", obeys "stop".
FAKE_JAR = b"""import os, sys
if not os.path.exists("server.properties"):
    with open("server.properties", "w") as out:
        out.write("#Minecraft server properties\\nmax-players=20\\nmotd=A Minecraft Server\\n"
                  "server-port=25565\\n")
props = dict(line.strip().split("=", 1) for line in open("server.properties")
             if "=" in line and not line.startswith("#"))
print("[Server thread/INFO]: Starting minecraft server version %s" % VERSION, flush=True)
print("[Server thread/INFO]: Starting Minecraft server on *:%s" % props["server-port"], flush=True)
print('[Server thread/INFO]: Done (1.0s)! For help, type "help"', flush=True)
for line in sys.stdin:
    if line.strip() == "list":
        print("[Server thread/INFO]: There are 0 of a max of %s players online: "
              % props["max-players"], flush=True)
    if line.strip() == "stop":
        print("[Server thread/INFO]: Stopping the server", flush=True)
        break
"""


def jar_of(version: str) -> bytes:
    return f"VERSION = {version!r}\n".encode() + FAKE_JAR


class FakeMojang:
    """Serves ``files`` (path -> bytes); ``hits`` counts requests by path. A path in
    ``stalls`` sends its headers and first eighth, sets ``stalled``, then waits for
    ``release`` before the rest. A path in ``redirects`` answers 302 to its URL; one in
    ``lengths`` announces that Content-Length (whatever it is)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self.stalls: set[str] = set()
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.redirects: dict[str, str] = {}
        self.lengths: dict[str, str] = {}
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def add_versions(self, *versions: str, bad_sha1: str | None = None) -> None:
        """The manifest (latest = the last of ``versions``), each version's JSON and jar;
        ``bad_sha1`` names a version whose JSON gives its jar a wrong SHA-1."""
        entries = []
        for version in versions:
            jar = jar_of(version)
            self.files[f"/jars/{version}/server.jar"] = jar
            sha1 = hashlib.sha1(jar).hexdigest()
            if version == bad_sha1:
                sha1 = "0" * 40
            about = {"id": version, "downloads": {"server": {
                "sha1": sha1, "size": len(jar), "url": self.url(f"/jars/{version}/server.jar"),
            }}}  # fmt: skip
            body = json.dumps(about).encode()
            self.files[f"/v1/packages/{version}.json"] = body
            entries.append({"id": version, "type": "release",
                            "url": self.url(f"/v1/packages/{version}.json"),
                            "sha1": hashlib.sha1(body).hexdigest()})  # fmt: skip
        manifest = {"latest": {"release": versions[-1], "snapshot": versions[-1]},
                    "versions": entries}  # fmt: skip
        self.files["/mc/game/version_manifest_v2.json"] = json.dumps(manifest).encode()

    @property
    def manifest_url(self) -> str:
        return self.url("/mc/game/version_manifest_v2.json")


@contextmanager
def fake_mojang() -> Iterator[FakeMojang]:
    site = FakeMojang()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.hits[self.path] = site.hits.get(self.path, 0) + 1
            if self.path in site.redirects:
                self.send_response(302)
                self.send_header("Location", site.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = site.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", site.lengths.get(self.path, str(len(body))))
            self.end_headers()
            try:
                if self.path in site.stalls:
                    self.wfile.write(body[: len(body) // 8])
                    self.wfile.flush()
                    site.stalled.set()
                    site.release.wait(60)
                    body = body[len(body) // 8 :]
                self.wfile.write(body)
            except OSError:
                pass  # the client went away (a cancelled install)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def fake_java(directory: Path) -> Path:
    """A ``java`` in ``directory`` that runs ``-jar X`` as a Python program; the
    directory, to put first on PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    java = directory / "java"
    java.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "jar = sys.argv[sys.argv.index('-jar') + 1]\n"
        "os.execv(sys.executable, [sys.executable, jar])\n"
    )
    java.chmod(0o755)
    return directory
