"""The server programs the chaos run writes beside its data directory: a numbered-line
flooder whose console can be checked line by line, and a server whose grandchild
leaves the process group (``setsid``) to escape a group signal."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

__all__ = ["ESCAPER_CHILD", "NUMBERED", "argv_of", "command_of", "write_programs"]

#: One numbered line: ``N <run id> <number> <filler>``, 42 bytes with its newline.
NUMBERED = re.compile(rb"^N ([0-9a-f]{8}) ([0-9]{10}) [.]{19}$")
#: The program name of the escaper's grandchild (a server's descendant, never its main).
ESCAPER_CHILD = "chaos_escaper_child.py"

_NUMBERS = r'''
"""Numbered lines at a bounded rate, up to a bounded count, then sleep; a write the
disk refuses is retried until it lands, so no line is ever lost by this program."""
import errno, os, sys, time

total, rate = int(sys.argv[1]), float(sys.argv[2])
run = os.urandom(4).hex().encode()
batch = 25
number = 0
began = time.monotonic()
while number < total:
    lines = b"".join(
        b"N %s %010d %s\n" % (run, n, b"." * 19) for n in range(number, min(total, number + batch))
    )
    view = memoryview(lines)
    while view:
        try:
            view = view[os.write(1, view):]
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EINTR):
                raise
            time.sleep(0.05)
    number += batch
    time.sleep(max(0.0, began + number / rate - time.monotonic()))
while True:
    time.sleep(3600)
'''

_ESCAPER = r'''
"""Fork a child that forks a grandchild and exits; the grandchild runs the escaper
child program (which leaves the process group); this process prints "ready", sleeps."""
import os, sys, time

child = os.fork()
if child == 0:
    if os.fork() == 0:
        here = os.path.dirname(os.path.abspath(__file__))
        os.execv(sys.executable, [sys.executable, os.path.join(here, "ESCAPER_CHILD")])
    os._exit(0)
os.waitpid(child, 0)
print("ready", flush=True)
while True:
    time.sleep(3600)
'''.replace("ESCAPER_CHILD", ESCAPER_CHILD)

_ESCAPER_CHILD = r'''
"""Leave the process group and the session (setsid), say so, sleep."""
import os, time

os.setsid()
print("escaped: pid %d in session %d" % (os.getpid(), os.getsid(0)), flush=True)
while True:
    time.sleep(3600)
'''

_PROGRAMS = {
    "chaos_numbers.py": _NUMBERS,
    "chaos_escaper.py": _ESCAPER,
    ESCAPER_CHILD: _ESCAPER_CHILD,
}


def write_programs(directory: Path) -> Path:
    """Write the programs into ``directory`` (made if missing); returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in _PROGRAMS.items():
        (directory / name).write_text(text.lstrip())
    return directory


def argv_of(path: Path, *args: object) -> list[str]:
    """``[python, path, *args]``: a program run by this interpreter."""
    return [sys.executable, str(path), *map(str, args)]


def command_of(path: Path, *args: object) -> str:
    """The ``command`` setting of a ``command`` server running ``path``."""
    return shlex.join(argv_of(path, *args))
