"""werkzeug internals: a URL rule whose URL builders are compiled on their first use.

As each rule is added, werkzeug writes and compiles two Python functions that build a
URL from it (``Rule._compile_builder``, from ``Rule.compile``): most of the time an app
takes to be made, and memory held for as long as it lives. The daemon matches requests
against its rules and never builds a URL from one, so :func:`rule_class` gives a rule
that compiles each builder on its first call. Written and checked against werkzeug
3.1; with another version quart's own rule class is used.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from quart.routing import QuartRule
from werkzeug.routing import Rule

__all__ = ["rule_class"]

#: The version prefix this module was written for.
WRITTEN_FOR = "3.1."
#: The installed werkzeug is that version and has the method overridden.
SUPPORTED = version("werkzeug").startswith(WRITTEN_FOR) and hasattr(Rule, "_compile_builder")

Builder = Callable[..., tuple[str, str]]


class _LazyBuildRule(QuartRule):
    def _compile_builder(self, append_unknown: bool = True) -> Builder:
        compile_builder = super()._compile_builder
        built: list[Builder] = []

        def build(rule: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            if not built:
                built.append(compile_builder(append_unknown))
            return built[0](rule, *args, **kwargs)

        return build


def rule_class() -> type[QuartRule]:
    """The rule class for an app's ``url_rule_class``."""
    return _LazyBuildRule if SUPPORTED else QuartRule
