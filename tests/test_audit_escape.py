"""Control characters, line separators and bidirectional overrides are escaped in the
audit log's text and in every line the daemon logs; tracebacks keep their lines."""

from __future__ import annotations

import logging

from leosuite.audit import LogFormatter, escape_controls


def test_escape_controls_writes_what_would_break_a_line_as_escapes() -> None:
    assert escape_controls("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert escape_controls("\x00\x1b[31m\x7f\x85\x9f") == "\\x00\\x1b[31m\\x7f\\x85\\x9f"
    assert escape_controls("x\u2028y\u2029z") == "x\\u2028y\\u2029z"
    assert escape_controls("\u202eevil\u2066\u200f") == "\\u202eevil\\u2066\\u200f"
    assert escape_controls("plain Ünïcödé ✓ 名前") == "plain Ünïcödé ✓ 名前"


def test_the_log_formatter_keeps_each_message_on_its_line() -> None:
    formatter = LogFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord(
        "leosuite.api", logging.WARNING, __file__, 1, "handler for %s failed", ("/a\nFORGED",), None
    )
    assert formatter.format(record) == "WARNING leosuite.api: handler for /a\\nFORGED failed"
    try:
        raise ValueError("boom")
    except ValueError as exc:
        record = logging.LogRecord(
            "leosuite", logging.ERROR, __file__, 1, "failed", (), (type(exc), exc, None)
        )
    lines = formatter.format(record).splitlines()
    assert lines[0] == "ERROR leosuite: failed"
    assert lines[-1] == "ValueError: boom"
