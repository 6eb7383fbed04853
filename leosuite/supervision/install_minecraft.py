"""The ``minecraft_jar`` install step (blocking, for a worker thread): Mojang's version
manifest (the operator's ``servers.minecraft_manifest_url``), the version's JSON
(checked against the manifest's SHA-1), then its server jar (checked against the SHA-1
the version's JSON gives)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec

from .install_fetch import InstallFailed, Stop, download_into, fetch_json
from .install_steps import RenderedStep

__all__ = ["minecraft_jar"]

_MANIFEST_MAX = 16 * 1024 * 1024


class _Latest(msgspec.Struct):
    release: str


class _Entry(msgspec.Struct):
    id: str
    url: str
    sha1: str | None = None


class _Manifest(msgspec.Struct):
    latest: _Latest
    versions: list[_Entry]


class _ServerDownload(msgspec.Struct):
    url: str
    sha1: str


class _Downloads(msgspec.Struct):
    server: _ServerDownload | None = None


class _Version(msgspec.Struct):
    downloads: _Downloads


def minecraft_jar(
    manifest_url: str,
    root: Path,
    step: RenderedStep,
    *,
    max_bytes: int,
    stop: Stop,
    progress: Callable[[int, int | None], None],
    owner: tuple[int, int] | None,
) -> int:
    """Mojang's manifest, the version's JSON, then its server jar (a worker thread)."""
    url = manifest_url
    try:
        manifest = msgspec.convert(fetch_json(url, max_bytes=_MANIFEST_MAX, stop=stop), _Manifest)
    except msgspec.ValidationError:
        raise InstallFailed(f"{url[:200]} is not a Minecraft version manifest") from None
    version = manifest.latest.release if step.version == "latest" else step.version
    entry = next((v for v in manifest.versions if v.id == version), None)
    if entry is None:
        raise InstallFailed(f"Minecraft version {version[:100]!r} is not in the manifest")
    try:
        about = msgspec.convert(
            fetch_json(entry.url, max_bytes=_MANIFEST_MAX, stop=stop, sha1=entry.sha1),
            _Version,
        )
    except msgspec.ValidationError:
        raise InstallFailed(f"the manifest of Minecraft {version} is not valid") from None
    server = about.downloads.server
    if server is None:
        raise InstallFailed(f"Minecraft {version} has no server download")
    return download_into(root, step.to, server.url, ("sha1", server.sha1.lower()),
                         max_bytes=max_bytes, stop=stop, progress=progress,
                         owner=owner)  # fmt: skip
