"""Hostile archives, built with tarfile here, are refused by a restore and by
``check_archive`` with a message naming the member, and nothing is written: neither
outside the destination nor in it (a destination made by the restore is removed)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from leosuite.backups.archive import (
    MAX_MEMBERS,
    CorruptArchive,
    UnsafeArchive,
    check_archive,
    create_archive,
    restore_archive,
)

Member = tuple[str, str, str | bytes]  # kind, name, content or link target


def member(kind: str, name: str, data: str | bytes = b"") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.type = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "sym": tarfile.SYMTYPE,
        "hard": tarfile.LNKTYPE,
        "chr": tarfile.CHRTYPE,
        "blk": tarfile.BLKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }[kind]
    if kind in ("sym", "hard"):
        info.linkname = str(data)
    return info


def build(path: Path, members: list[Member], *, compression: str = "zstd") -> Path:
    """An archive at ``path`` holding ``members`` in that order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, data in members:
            info = member(kind, name, data)
            if kind == "file":
                content = data if isinstance(data, bytes) else data.encode()
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    body = raw.getvalue()
    if compression == "zstd":
        path.write_bytes(zstandard.ZstdCompressor().compress(body))
    else:
        path.write_bytes(gzip.compress(body))
    return path


def everything(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


HOSTILE: dict[str, tuple[list[Member], str, str]] = {
    # case: (members in order, why, the member the message names)
    "absolute": ([("file", "/tmp/leosuite-evil", b"x")], "absolute path", "/tmp/leosuite-evil"),
    "dotdot": ([("file", "../evil", b"x")], "'..'", "../evil"),
    "dotdot deep": ([("dir", "a", b""), ("file", "a/../../evil", b"x")], "'..'", "a/../../evil"),
    "hard link": ([("file", "a", b"x"), ("hard", "b", "a")], "hard link", "b"),
    "hard link out": ([("hard", "passwd", "/etc/passwd")], "hard link", "passwd"),
    "char device": ([("chr", "null", b"")], "device", "null"),
    "block device": ([("blk", "sda", b"")], "device", "sda"),
    "fifo": ([("fifo", "pipe", b"")], "FIFO", "pipe"),
    "link absolute": ([("sym", "etc", "/etc")], "absolute path", "etc"),
    "link up": ([("sym", "up", "../../..")], "outside", "up"),
    "link up from a dir": ([("dir", "d", b""), ("sym", "d/up", "../..")], "outside", "d/up"),
    "classic: link then through it": (
        [("sym", "a", "/tmp"), ("file", "a/x", b"x")],
        "absolute path",
        "a",
    ),
    "through an inside link": (
        [("dir", "sub", b""), ("sym", "a", "sub"), ("file", "a/x", b"x")],
        "inside a file or a symbolic link",
        "a/x",
    ),
    "link chain leaves": ([("sym", "a", "."), ("sym", "l", "a/..")], "outside", "l"),
    "link chain leaves, link last": (
        [("sym", "l", "a/../x"), ("sym", "a", ".")],
        "outside",
        "l",
    ),
    "link loop": ([("sym", "a", "b"), ("sym", "b", "a/x")], "outside", "a"),
    "file then inside it": ([("file", "f", b"x"), ("file", "f/x", b"x")], "inside a file", "f/x"),
    "dir over a file": ([("file", "d/x", b"x"), ("file", "d", b"y")], "same name", "d"),
    "twice": ([("file", "a", b"x"), ("file", "a", b"y")], "twice", "a"),
    "the destination itself": ([("file", ".", b"x")], "destination itself", "."),
    "long name": ([("file", "d/" + "n" * 4100, b"x")], "longer than 4096", ""),
    "long link target": ([("sym", "l", "a/" * 2100)], "over-long target", "l"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("compression", ["zstd", "gzip"])
async def test_hostile_archive_is_refused(tmp_path: Path, case: str, compression: str) -> None:
    members, why, named = HOSTILE[case]
    box = tmp_path / "box"
    box.mkdir()
    archive = build(tmp_path / "hostile", members, compression=compression)
    with pytest.raises(UnsafeArchive, match="unsafe archive") as refused:
        check_archive(archive)
    assert why in str(refused.value)
    if named:
        assert f"member {named!r}:" in str(refused.value)
    else:
        assert "member 'd/nnnn" in str(refused.value)  # cut, not 4 KiB long
        assert len(str(refused.value)) < 300
    before = everything(tmp_path)
    with pytest.raises(UnsafeArchive, match="unsafe archive") as refused:
        await restore_archive(archive, box / "dest")
    assert why in str(refused.value)
    assert everything(tmp_path) == before
    assert not (box / "dest").exists()
    assert not os.path.lexists("/tmp/leosuite-evil")


async def test_limits_on_members_and_bytes(tmp_path: Path) -> None:
    assert MAX_MEMBERS == 1_000_000
    many = build(tmp_path / "many", [("file", f"f{n}", b"") for n in range(6)])
    with pytest.raises(UnsafeArchive, match="more than 5 members"):
        check_archive(many, max_members=5)
    with pytest.raises(UnsafeArchive, match="more than 5 members"):
        await restore_archive(many, tmp_path / "dest", max_members=5)
    assert check_archive(many, max_members=6).files == 6

    big = build(tmp_path / "big", [("file", "a", b"x" * 600), ("file", "b", b"y" * 600)])
    with pytest.raises(UnsafeArchive, match=r"more than 1000 bytes.*'b'"):
        await restore_archive(big, tmp_path / "dest", max_bytes=1000)
    assert not (tmp_path / "dest").exists()
    assert (await restore_archive(big, tmp_path / "dest", max_bytes=1200)).source_bytes == 1200


async def test_huge_extended_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    archive = build(tmp_path / "pax", [("file", "n" * (2 << 20), b"x")])
    with pytest.raises(UnsafeArchive, match="extended header"):
        check_archive(archive)


Damage = Callable[[bytes], bytes]
DAMAGES: dict[str, tuple[Damage, str]] = {
    "not compressed": (lambda body: b"plain text, no archive at all" * 10, "neither zstd nor"),
    "empty": (lambda body: b"", "neither zstd nor"),
    "truncated": (lambda body: body[: len(body) // 2], "archive"),
    "cut at a member boundary": (lambda body: body, "truncated"),
    "garbage after": (lambda body: body + os.urandom(64), "cannot be read"),
    "flipped byte": (lambda body: body[:40] + bytes([body[40] ^ 0xFF]) + body[41:], "archive"),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
@pytest.mark.parametrize("compression", ["zstd", "gzip"])
async def test_damaged_archive_is_refused(tmp_path: Path, case: str, compression: str) -> None:
    damage, why = DAMAGES[case]
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(300_000))
    (src / "b").write_bytes(b"b" * 100_000)
    good = tmp_path / "good"
    await create_archive(src, good, compression=compression)  # type: ignore[arg-type]
    body = good.read_bytes()
    if case == "cut at a member boundary":
        # the tar stream without its end marker, compressed again
        plain = io.BytesIO()
        with tarfile.open(fileobj=plain, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo("a")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
        cut = plain.getvalue()[:1024]
        body = (
            zstandard.ZstdCompressor().compress(cut)
            if compression == "zstd"
            else gzip.compress(cut)
        )
    bad = tmp_path / "bad"
    bad.write_bytes(damage(body))
    with pytest.raises(CorruptArchive, match=why):
        check_archive(bad)
    with pytest.raises(CorruptArchive, match=why):
        await restore_archive(bad, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


async def test_recorded_hash_is_checked_before_writing(tmp_path: Path) -> None:
    archive = build(tmp_path / "ok", [("file", "a", b"a")])
    with pytest.raises(CorruptArchive, match="SHA-256"):
        await restore_archive(archive, tmp_path / "dest", expect_sha256="0" * 64)
    assert not (tmp_path / "dest").exists()
