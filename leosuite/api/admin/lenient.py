"""Bodies the admin API takes leniently (the origin's tools send names leosuite has no
setting for): a JSON object read as one raw value per name, and the names it ignored,
as the answer lists them (bounded in count and length)."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ...errors import InvalidInput

__all__ = ["MAX_IGNORED", "MAX_IGNORED_CHARS", "raw_object", "shown_ignored", "shown_name"]

#: Most ignored names an answer lists, and the most characters it shows of each.
MAX_IGNORED = 100
MAX_IGNORED_CHARS = 100


def raw_object(data: bytes) -> dict[str, msgspec.Raw]:
    """The body as ``{name: its raw JSON}`` (an empty body is ``{}``); InvalidInput for
    a body that is not a JSON object."""
    try:
        return msgspec.json.decode(data if data.strip() else b"{}", type=dict[str, msgspec.Raw])
    except msgspec.ValidationError:
        raise InvalidInput("the request body must be a JSON object") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("request body is nested too deeply") from None


def shown_name(name: str) -> str:
    """``name`` cut to :data:`MAX_IGNORED_CHARS` characters (an ellipsis ends a cut one)."""
    cut = MAX_IGNORED_CHARS
    return name if len(name) <= cut else name[: cut - 1] + "…"


def shown_ignored(names: Iterable[str]) -> list[str]:
    """The first :data:`MAX_IGNORED` of ``names``, each as :func:`shown_name` shows it."""
    return [shown_name(name) for _, name in zip(range(MAX_IGNORED), names, strict=False)]
