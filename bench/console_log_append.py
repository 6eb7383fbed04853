"""Micro-benchmark: ConsoleLog.append throughput against a bare os.write loop.

    .venv/bin/python bench/console_log_append.py [--total-mib 1024] [--chunk-kib 256] [--runs 3]

Appends --total-mib in --chunk-kib chunks (fresh ``bytes`` objects, as a pipe reader
would hand them over) into a temporary directory, with the default ring (4 MiB),
16 MiB files and 4 kept, and prints MB/s next to two limits: the same chunks written
with one ``os.write`` each to a single O_APPEND file (1 GiB of dirty page cache), and
to 16 MiB files rotated and deleted like ConsoleLog's (the fair comparison: deleting a
file drops its dirty pages, which is why both beat the single file). Both run in the same process,
alternately, so a noisy machine affects both; compare the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from leosuite.supervision.console_log import ConsoleLog


def make_chunks(chunk: int, count: int) -> list[bytes]:
    # A few distinct objects, reused: allocation cost is not what we measure, and
    # 1 GiB of distinct chunks would not fit in memory anyway.
    line = b"[12:00:00] [Server thread/INFO]: player joined the game \xe2\x9c\x93\n"
    base = (line * (chunk // len(line) + 1))[:chunk]
    return [base[i:] + base[:i] for i in range(min(count, 8))]


def bench_console_log(directory: Path, chunks: list[bytes], count: int) -> float:
    log = ConsoleLog(directory)
    t0 = time.perf_counter()
    for i in range(count):
        log.append(chunks[i % len(chunks)])
    elapsed = time.perf_counter() - t0
    log.close()
    return elapsed


def bench_raw_write(directory: Path, chunks: list[bytes], count: int) -> float:
    fd = os.open(directory / "raw.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    t0 = time.perf_counter()
    for i in range(count):
        os.write(fd, chunks[i % len(chunks)])
    elapsed = time.perf_counter() - t0
    os.close(fd)
    return elapsed


def bench_raw_rotating(directory: Path, chunks: list[bytes], count: int) -> float:
    """The limit for the same disk footprint: 16 MiB files, 4 kept, one write per chunk."""
    path = directory / "raw.log"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    fd = os.open(path, flags, 0o640)
    size = 0
    t0 = time.perf_counter()
    for i in range(count):
        data = chunks[i % len(chunks)]
        if size + len(data) > 16 * 1024 * 1024:
            os.replace(path, directory / f"raw.log.{i}")
            os.close(fd)
            fd = os.open(path, flags, 0o640)
            size = 0
            old = directory / f"raw.log.{i - 4 * 64}"
            old.unlink(missing_ok=True)
        size += os.write(fd, data)
    elapsed = time.perf_counter() - t0
    os.close(fd)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-mib", type=int, default=1024)
    parser.add_argument("--chunk-kib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    chunk = args.chunk_kib * 1024
    count = args.total_mib * 1024 * 1024 // chunk
    chunks = make_chunks(chunk, count)
    total_mb = count * chunk / 1e6
    cases = (
        ("os.write, one file", bench_raw_write),
        ("os.write, rotating", bench_raw_rotating),
        ("ConsoleLog.append", bench_console_log),
    )
    results: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(args.runs):
        for name, fn in cases:
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
                results[name].append(total_mb / fn(Path(tmp), chunks, count))
    print(f"{total_mb:.0f} MB in {args.chunk_kib} KiB chunks, {args.runs} runs, median (min-max)")
    print(f"{'what':<24} {'MB/s':>22}")
    for name, rates in results.items():
        med = statistics.median(rates)
        print(f"{name:<24} {med:>8.0f} ({min(rates):.0f}-{max(rates):.0f})")
    ratio = statistics.median(results["ConsoleLog.append"]) / statistics.median(
        results["os.write, rotating"]
    )
    print(f"ConsoleLog / os.write rotating (same files on disk): {ratio:.2f}")


if __name__ == "__main__":
    main()
