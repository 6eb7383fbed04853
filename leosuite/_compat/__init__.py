"""Every reach into a pinned library's internals, one module per library.

Each reach is a small function written for one library version, checked once at
import against the installed version: another version gets the public fallback (and
a warning where the fallback costs something), never a half-working private path.
Callers use only these functions.
"""
