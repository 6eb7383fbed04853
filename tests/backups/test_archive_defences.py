"""The second and third lines of a restore's defence, each shown with the lines before
it switched off: tarfile's ``data`` filter, then ``O_NOFOLLOW`` file-system steps; and
the guarded tar header class in use on this Python."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from leosuite._compat.tarfile import guarded_tarinfo
from leosuite.backups import archive_restore
from leosuite.backups.archive import ArchiveResult, UnsafeArchive, check_archive, restore_archive


def build(path: Path, members: list[tuple[str, str, str]]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data.encode()))
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    return path


def lax_parts(info: tarfile.TarInfo) -> tuple[tuple[str, ...], str]:
    parts = tuple(part for part in info.name.split("/") if part not in ("", "."))
    return parts, "dir" if info.isdir() else "link" if info.issym() else "file"


def lax_scan(path: Path, **_: object) -> tuple[ArchiveResult, dict[str, str]]:
    links = {}
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        for info in tar:
            if info.issym():
                links["/".join(lax_parts(info)[0])] = info.linkname
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = ArchiveResult(size=0, sha256=digest, files=100, source_bytes=10**6)
    return result, links


@pytest.fixture
def first_line_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_restore, "scan_archive", lax_scan)
    monkeypatch.setattr(archive_restore, "member_parts", lax_parts)


@pytest.mark.usefixtures("first_line_off")
async def test_data_filter_refuses_what_the_checks_let_through(tmp_path: Path) -> None:
    assert archive_restore._DATA_FILTER is tarfile.data_filter
    archive = build(tmp_path / "a", [("file", "ok", "x"), ("sym", "etc", "/etc")])
    with pytest.raises(UnsafeArchive, match="refused by the data filter"):
        await restore_archive(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.usefixtures("first_line_off")
async def test_no_symbolic_link_is_followed_when_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_restore, "_DATA_FILTER", None)
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "box").mkdir()
    for members in (
        [("sym", "a", "../../outside"), ("file", "a/f", "x")],
        [("sym", "f", "../../outside/f"), ("file", "f", "x")],
    ):
        archive = build(tmp_path / "a", members)
        with pytest.raises(UnsafeArchive, match="already in its place"):
            await restore_archive(archive, tmp_path / "box" / "dest")
        assert list(outside.iterdir()) == []
        assert not (tmp_path / "box" / "dest").exists()


def test_the_guarded_header_class_is_in_use_on_this_python(tmp_path: Path) -> None:
    # The private tarfile methods it overrides exist here: the plain class is never used.
    guarded = guarded_tarinfo(UnsafeArchive, extended_max=1 << 20)
    assert guarded is not tarfile.TarInfo
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("holes.bin")
        info.type = tarfile.GNUTYPE_SPARSE
        tar.addfile(info)
    path = tmp_path / "sparse"
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    with pytest.raises(UnsafeArchive, match="sparse member"):
        check_archive(path)
