"""The console producer of the benchmarks: N bytes to stdout in fixed-size writes.

    python bench/_producer.py BYTES [CHUNK]     (BYTES < 0: forever)

Log-like lines (with newlines) so that nothing gets a free ride on a special pattern;
every write is one ``os.write`` of CHUNK bytes (default 64 KiB), short writes resumed.
"""

from __future__ import annotations

import contextlib
import os
import sys


def main() -> None:
    total = int(sys.argv[1])
    chunk = int(sys.argv[2]) if len(sys.argv) > 2 else 64 * 1024
    line = b"[12:00:00] [Server thread/INFO]: <bench> the quick brown fox jumps over it\n"
    block = (line * (chunk // len(line) + 1))[:chunk]
    view = memoryview(block)
    left = total
    while left != 0:
        n = chunk if left < 0 else min(chunk, left)
        done = 0
        while done < n:
            done += os.write(1, view[done:n])
        if left > 0:
            left -= n


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        main()
