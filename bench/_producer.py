"""The console producer of the benchmarks: N bytes to stdout in fixed-size writes.

    python bench/_producer.py BYTES [CHUNK [RATE]]     (BYTES < 0: forever)

RATE (bytes a second, 0 = as fast as it can) paces the writes: after each one the
producer sleeps until its bytes so far are due, so every reader gets the same offer.

Log-like lines (with newlines) so that nothing gets a free ride on a special pattern;
every write is one ``os.write`` of CHUNK bytes (default 64 KiB), short writes resumed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time


def main() -> None:
    total = int(sys.argv[1])
    chunk = int(sys.argv[2]) if len(sys.argv) > 2 else 64 * 1024
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    line = b"[12:00:00] [Server thread/INFO]: <bench> the quick brown fox jumps over it\n"
    block = (line * (chunk // len(line) + 1))[:chunk]
    view = memoryview(block)
    left = total
    sent, start = 0, time.monotonic()
    while left != 0:
        n = chunk if left < 0 else min(chunk, left)
        done = 0
        while done < n:
            done += os.write(1, view[done:n])
        if left > 0:
            left -= n
        if rate > 0:
            sent += n
            ahead = start + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        main()
