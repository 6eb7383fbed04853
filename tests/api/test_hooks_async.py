"""Every request hook, error handler and view of the HTTP and admin apps is a coroutine
function: quart-trio runs a plain function in a worker thread, a thread hop on every
request (the metrics' request timer was one: a quarter to a third of a status call's CPU)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from inspect import iscoroutinefunction
from typing import Any

from quart_trio import QuartTrio

from leosuite.api.admin.app import create_admin_app
from leosuite.api.http.app import create_http_app
from tests.helpers.daemon import RunningDaemon


def _callables(app: QuartTrio) -> Iterator[tuple[str, Callable[..., Any]]]:
    for kind, registry in (
        ("before_request", app.before_request_funcs),
        ("after_request", app.after_request_funcs),
        ("teardown_request", app.teardown_request_funcs),
        ("before_websocket", app.before_websocket_funcs),
        ("after_websocket", app.after_websocket_funcs),
    ):
        for blueprint, functions in registry.items():
            for function in functions:
                yield f"{kind} of {blueprint or 'the app'}", function
    for blueprint, by_code in app.error_handler_spec.items():
        for handlers in by_code.values():
            for exception, handler in handlers.items():
                yield f"error handler of {blueprint or 'the app'} for {exception}", handler
    for endpoint, view in app.view_functions.items():
        yield f"view {endpoint}", view


async def test_no_hook_or_view_runs_in_a_thread(daemon: RunningDaemon) -> None:
    for app in (create_http_app(daemon.ctx), create_admin_app(daemon.ctx)):
        found = list(_callables(app))
        assert len(found) > 50, found  # the registries were read
        plain = [where for where, function in found if not iscoroutinefunction(function)]
        assert plain == [], plain
