"""A server type's install steps: their structs (the ``[[install]]`` tables of a type
file), their checks, and their rendering with a server's settings. Pure: no trio, no I/O.

Each step does one thing:

* ``download = {url, to, sha256 | sha1}``: fetch ``url`` (HTTP or HTTPS) into the file
  ``to``, refused unless its content has the checksum;
* ``minecraft_jar = {version, to}``: the official Minecraft server jar of ``version``
  (``latest``: the latest release), found through Mojang's version manifest and checked
  against the SHA-1 the manifest gives;
* ``write = {to, content}``: write ``content`` into the file ``to``;
* ``run = [argv...]``: run a command in the server's directory as the server's user,
  with no shell, within ``timeout`` seconds.

Any step may name a ``require``\\ d bool variable: unless the server's setting is true
the install stops there with the step's ``refusal`` (a licence to accept, say). Texts
take ``{var}`` placeholders as the command does; a ``to`` is a path relative to the
server's directory that never leaves it (no ``..``, not absolute; at write time no
symbolic link is followed). A value put into a download's URL is percent-encoded, and
a placeholder may not stand in its scheme or host (the type's author chooses where
downloads come from).

A step is *user-controlled* (:func:`user_controlled`) when a variable's placeholder
stands in what it fetches or writes or runs: a download's URL, checksum or ``to``, a
write's ``to`` or content, a run's argv, a ``minecraft_jar``'s ``to`` (its jar and
checksum come from the manifest the operator configured, so its ``version`` is not).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

import msgspec

from leosuite.errors import InvalidInput

if TYPE_CHECKING:
    from leosuite.supervision.types import ServerType

__all__ = [
    "Download",
    "InstallStep",
    "MinecraftJar",
    "RenderedStep",
    "WriteFile",
    "check_install",
    "install_key",
    "render_install",
    "user_controlled",
]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
#: Placeholders the daemon fills in itself (not a setting anyone chooses).
_BUILTINS = frozenset({"python", "server_dir"})
#: What a download's URL must spell out before its first placeholder: scheme and host.
_URL_HEAD = re.compile(r"https?://[^/?#{}]+[/?#]", re.IGNORECASE)
_HEX = {"sha256": re.compile(r"[0-9a-f]{64}"), "sha1": re.compile(r"[0-9a-f]{40}")}
#: The longest a run step may be given (seconds); its default is ten minutes.
MAX_RUN_TIMEOUT = 86400.0


class Download(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str
    to: str
    sha256: str | None = None
    sha1: str | None = None

    def __post_init__(self) -> None:
        if (self.sha256 is None) == (self.sha1 is None):
            raise ValueError("a download needs exactly one of sha256 and sha1")


class MinecraftJar(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: str = "latest"
    to: str = "server.jar"


class WriteFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to: str
    content: str


class InstallStep(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One ``[[install]]`` table: exactly one of ``download``, ``minecraft_jar``,
    ``write`` and ``run``."""

    download: Download | None = None
    minecraft_jar: MinecraftJar | None = None
    write: WriteFile | None = None
    run: tuple[str, ...] | None = None
    #: Seconds a ``run`` step may take before it is killed.
    timeout: float = 600.0
    #: A bool variable that must be true for the install to go on.
    require: str | None = None
    #: What the install says when ``require`` is not true.
    refusal: str = ""

    def __post_init__(self) -> None:
        kinds = [self.download, self.minecraft_jar, self.write, self.run]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("an install step has exactly one of download, minecraft_jar, "
                             "write and run")  # fmt: skip
        if self.run is not None and not self.run:
            raise ValueError("run must not be empty")
        if not 0 < self.timeout <= MAX_RUN_TIMEOUT:
            raise ValueError(f"timeout must be more than 0 and at most {MAX_RUN_TIMEOUT:g}")


StepKind = Literal["download", "minecraft_jar", "write", "run"]


@dataclass(frozen=True, slots=True)
class RenderedStep:
    """One step with the server's settings in place."""

    kind: StepKind
    #: What the console and the dashboard call it ("download server.jar").
    label: str
    #: ``to`` relative to the server's directory (empty for ``run``).
    to: str = ""
    url: str = ""
    #: ``(algorithm, lowercase hex)`` of a download.
    checksum: tuple[str, str] = ("", "")
    version: str = ""
    content: str = ""
    argv: tuple[str, ...] = ()
    timeout: float = 600.0
    #: Why the install may not go on (a ``require`` not met), else "".
    refused: str = ""
    #: A download whose URL takes a setting: it reaches public addresses only.
    guarded: bool = False


def _texts(step: InstallStep) -> list[str]:
    if step.download is not None:
        d = step.download
        return [d.url, d.to, d.sha256 or d.sha1 or ""]
    if step.minecraft_jar is not None:
        return [step.minecraft_jar.version, step.minecraft_jar.to]
    if step.write is not None:
        return [step.write.to, step.write.content]
    return list(step.run or ())


def _variables_in(text: str) -> bool:
    return any(
        m.group(1) is not None and m.group(1) not in _BUILTINS for m in _PLACEHOLDER.finditer(text)
    )


def _controlled_texts(step: InstallStep) -> list[str]:
    if step.minecraft_jar is not None:
        return [step.minecraft_jar.to]
    return _texts(step)


def user_controlled(stype: ServerType) -> bool:
    """Whether a step of the type fetches, writes or runs what a setting says (see the
    module's doc): on a server that runs as the daemon's user, only an ADMIN installs it."""
    return any(_variables_in(t) for step in stype.install for t in _controlled_texts(step))


def _url_fault(url: str) -> str | None:
    first = next((m for m in _PLACEHOLDER.finditer(url) if m.group(1) is not None), None)
    if first is None or _URL_HEAD.match(url[: first.start()]):
        return None
    return "a placeholder may not stand in the scheme or host of a download's url"


def check_install(stype: ServerType, known: set[str]) -> tuple[str, str] | None:
    """The first fault of the type's install steps as ``(key, message)``, else None:
    an unknown placeholder, a placeholder in a download URL's scheme or host, or a
    ``require`` that names no bool variable."""
    bools = {v.name for v in stype.variables if v.type == "bool"}
    for i, step in enumerate(stype.install):
        for text in _texts(step):
            for m in _PLACEHOLDER.finditer(text):
                if m.group(1) is not None and m.group(1) not in known:
                    return f"install[{i}]", f"unknown placeholder {{{m.group(1)}}}"
        if step.download is not None and (fault := _url_fault(step.download.url)):
            return f"install[{i}].download.url", fault
        if step.require is not None and step.require not in bools:
            return f"install[{i}].require", f"{step.require!r} is not a bool variable"
    return None


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _confined(path: str, field: str) -> str:
    """``path`` as components joined by ``/``: never absolute, never ``..``."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or ".." in parts or not parts or "\0" in path:
        raise InvalidInput(f"{field} must be a file inside the server directory", field=field)
    return "/".join(parts)


def render_install(
    stype: ServerType, settings: Mapping[str, object], *, python: str, server_dir: str
) -> list[RenderedStep]:
    """The type's install steps with ``settings`` (resolved) in place; InvalidInput when
    a ``to`` leads out of the server's directory or a checksum is not hex."""
    values = {k: _as_text(v) for k, v in settings.items()}
    values.update(python=python, server_dir=server_dir)

    def render(text: str, *, url: bool = False) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(1) is None:
                return m.group(0)[0]
            try:
                value = values[m.group(1)]
            except KeyError:
                raise InvalidInput(f"missing setting {m.group(1)!r}", field=m.group(1)) from None
            # A value in a URL is data, never a separator: all but unreserved is encoded.
            return quote(value, safe="") if url else value

        return _PLACEHOLDER.sub(one, text)

    steps: list[RenderedStep] = []
    for step in stype.install:
        refused = ""
        if step.require is not None and settings.get(step.require) is not True:
            refused = step.refusal or f"{step.require} must be set to true"
        if step.download is not None:
            d = step.download
            algo = "sha256" if d.sha256 is not None else "sha1"
            digest = render(d.sha256 or d.sha1 or "").strip().lower()
            if not _HEX[algo].fullmatch(digest):
                raise InvalidInput(f"install: {algo} must be {algo} in hex", field=algo)
            to = _confined(render(d.to), "to")
            steps.append(RenderedStep("download", f"download {to}", to=to,
                                      url=render(d.url, url=True), checksum=(algo, digest),
                                      refused=refused, guarded=_variables_in(d.url)))  # fmt: skip
        elif step.minecraft_jar is not None:
            m = step.minecraft_jar
            to = _confined(render(m.to), "to")
            version = render(m.version).strip() or "latest"
            label = f"download the Minecraft server {version} to {to}"
            steps.append(RenderedStep("minecraft_jar", label, to=to, version=version,
                                      refused=refused))  # fmt: skip
        elif step.write is not None:
            to = _confined(render(step.write.to), "to")
            content = render(step.write.content)
            steps.append(RenderedStep("write", f"write {to}", to=to, content=content,
                                      refused=refused))  # fmt: skip
        else:
            argv = tuple(render(a) for a in step.run or ())
            steps.append(RenderedStep("run", f"run {os.path.basename(argv[0])}", argv=argv,
                                      timeout=step.timeout, refused=refused))  # fmt: skip
    return steps


def install_key(steps: list[RenderedStep]) -> str:
    """What an install did, as a digest: a change of any step (a new version) differs."""
    encoded = msgspec.json.encode([
        [s.kind, s.to, s.url, list(s.checksum), s.version, s.content, list(s.argv)]
        for s in steps
    ])  # fmt: skip
    return hashlib.sha256(encoded).hexdigest()
