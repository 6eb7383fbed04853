"""An answer of a node (or of whatever answers at its address) nested too deep to
decode is "unreachable", as any answer that is not the API's: never a traceback."""

from __future__ import annotations

import pytest

from leosuite.cluster.forward import relayed_error
from leosuite.errors import NodeUnreachable

DEEP = b'{"error_type": "conflict", "error_message": ' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.mark.parametrize("status", [400, 409, 500])
def test_an_error_answer_nested_too_deep_is_unreachable(status: int) -> None:
    assert isinstance(relayed_error("b", status, DEEP), NodeUnreachable)
