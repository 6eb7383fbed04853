"""Backup archive engine vs GNU tar on the same server-like directory.

Makes (once per run, in a temporary directory removed afterwards unless ``--keep``) a
directory like a game server's: many small files (configs, player data, chunks),
large compressible ones (logs, worlds with long zero runs) and large incompressible
ones (jars, already compressed region files), ``--size-mb`` in all (1 GiB by default);
or takes ``--dir``. Every file is read once before timing, so both sides start with a
warm page cache. Then it times ``create_archive`` (zstd, in this process: its CPU is
this process's) and ``tar --zstd -cf`` (its CPU is that of tar and zstd, the children
of this process), writing both archives beside the directory, and prints MB/s, CPU
seconds and the compression ratio side by side (tar's time includes a ``sync`` of its
archive, as ours is fsynced before it is renamed). Without ``tar --zstd`` it tries
``tar -I zstd``, and without the zstd command both sides use gzip (``tar -z``); the
table says which. Our side also computes the archive's SHA-256, which tar does not.

    .venv/bin/python bench/backup.py                 # 1 GiB
    .venv/bin/python bench/backup.py --size-mb 256   # quicker
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio
from _common import fmt, print_table, ratio

from leosuite.backups.archive import Compression, create_archive

MiB = 1 << 20


def _log_chunk(rng: random.Random, size: int) -> bytes:
    """Log-like text, different on every line (compressible about 5x by zstd)."""
    levels = ("INFO", "WARN", "INFO", "INFO", "DEBUG")
    lines = []
    got = 0
    while got < size:
        line = (
            f"[{rng.randrange(24):02}:{rng.randrange(60):02}:{rng.randrange(60):02}] "
            f"[Server thread/{rng.choice(levels)}]: Player{rng.randrange(5000)} moved to "
            f"{rng.uniform(-3e4, 3e4):.3f}, {rng.uniform(0, 320):.3f}, "
            f"{rng.uniform(-3e4, 3e4):.3f} id={rng.getrandbits(48):x}\n"
        )
        lines.append(line)
        got += len(line)
    return "".join(lines).encode()[:size]


def _world_chunk(rng: random.Random, size: int) -> bytes:
    """Binary with long zero runs (block palettes, empty sections)."""
    out = bytearray(size)
    for offset in range(0, size, 4096):
        width = rng.randrange(256, 2048)
        out[offset : offset + width] = rng.randbytes(width)
    return bytes(out[:size])


Maker = Callable[[random.Random, int], bytes]


def _write(path: Path, size: int, make: Maker | None) -> None:
    rng = random.Random(path.name)
    with open(path, "wb") as out:
        left = size
        while left > 0:
            step = min(left, MiB)
            out.write(os.urandom(step) if make is None else make(rng, step))
            left -= step


def make_server_dir(root: Path, total: int) -> tuple[int, int]:
    """About ``total`` bytes: 20 % in small files, 45 % compressible, 35 % random."""
    rng = random.Random(19)
    small_budget = total // 5
    files = made = 0
    for n in range(10**9):
        if made >= small_budget:
            break
        where = root / "world" / "playerdata" / f"{n // 500:03}"
        where.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(512, 64 * 1024)
        kind = n % 3
        content = (
            rng.randbytes(size)
            if kind == 0
            else _log_chunk(rng, size)
            if kind == 1
            else _world_chunk(rng, size)
        )
        (where / f"{n:06}.dat").write_bytes(content)
        files += 1
        made += size
    large = total - made
    plan: list[tuple[str, float, Maker | None]] = [
        ("logs/latest.log", 0.20, _log_chunk),
        ("logs/2026-01-01.log", 0.05, _log_chunk),
        ("world/region/r.0.0.mca", 0.20, _world_chunk),
        ("server.jar", 0.10, None),
        ("world/region/r.1.0.mca.zst", 0.25, None),
    ]
    weight = sum(share for _, share, _ in plan)
    for rel, share, make in plan:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        size = int(large * share / weight)
        _write(path, size, make)
        files += 1
        made += size
    return files, made


def read_everything(root: Path) -> int:
    got = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                while data := f.read(MiB):
                    got += len(data)
    return got


def tar_command(out: Path, src: Path) -> tuple[list[str], Compression, str]:
    """The tar command line to compare with, the compression it uses, and its label."""
    has_zstd = shutil.which("zstd") is not None
    help_text = subprocess.run(["tar", "--help"], capture_output=True, text=True).stdout
    if has_zstd and "--zstd" in help_text:
        return ["tar", "--zstd", "-cf", str(out), "-C", str(src), "."], "zstd", "tar --zstd"
    if has_zstd:
        return ["tar", "-I", "zstd", "-cf", str(out), "-C", str(src), "."], "zstd", "tar -I zstd"
    return ["tar", "-czf", str(out), "-C", str(src), "."], "gzip", "tar -z"


def cpu(who: int) -> float:
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="archive this directory instead")
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the made directory")
    parser.add_argument("--tmp-dir", type=Path, help="where to make the temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--zstd-threads", type=int, default=0, help="create_archive's zstd_threads (default 0)"
    )
    args = parser.parse_args()
    if shutil.which("tar") is None:
        sys.exit("bench/backup.py needs GNU tar")
    work = Path(tempfile.mkdtemp(prefix="leosuite-bench-backup-", dir=args.tmp_dir))
    try:
        if args.dir is not None:
            src = args.dir.resolve()
            print(f"directory: {src}")
        else:
            src = work / "server"
            src.mkdir()
            started = time.monotonic()
            files, size = make_server_dir(src, args.size_mb * MiB)
            print(f"made {files} files, {size / MiB:.0f} MiB in {time.monotonic() - started:.0f} s")
        source = read_everything(src)
        argv, compression, label = tar_command(work / "tar.out", src)

        ours = work / "ours.out"
        cpu0, wall0 = cpu(resource.RUSAGE_SELF), time.monotonic()
        create = functools.partial(
            create_archive, src, ours, compression=compression, zstd_threads=args.zstd_threads
        )
        result = trio.run(create)
        our_wall, our_cpu = time.monotonic() - wall0, cpu(resource.RUSAGE_SELF) - cpu0

        cpu0, wall0 = cpu(resource.RUSAGE_CHILDREN), time.monotonic()
        subprocess.run(argv, check=True)
        subprocess.run(["sync", str(work / "tar.out")], check=True)  # ours is fsynced too
        tar_wall = time.monotonic() - wall0
        tar_cpu = cpu(resource.RUSAGE_CHILDREN) - cpu0
        tar_size = (work / "tar.out").stat().st_size

        print(
            f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
            f"{source / MiB:.0f} MiB in {result.files} files, {compression}\n"
        )
        rows = [
            [
                f"create_archive ({compression}, {args.zstd_threads} more threads)",
                fmt(source / MiB / our_wall),
                fmt(our_wall),
                fmt(our_cpu),
                fmt(source / result.size, 2),
            ],
            [
                label,
                fmt(source / MiB / tar_wall),
                fmt(tar_wall),
                fmt(tar_cpu),
                fmt(source / tar_size, 2),
            ],
            [
                "leosuite / tar",
                ratio(tar_wall, our_wall),
                ratio(our_wall, tar_wall),
                ratio(our_cpu, tar_cpu),
                ratio(tar_size, result.size),
            ],
        ]
        print_table(["", "MiB/s", "wall s", "CPU s", "ratio (in/out)"], rows)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
