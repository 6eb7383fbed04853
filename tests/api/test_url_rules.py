"""The apps' URL rules compile their URL builders on first use: matching is unchanged,
and a URL built from a rule is the one werkzeug's own rule builds."""

from __future__ import annotations

from quart.routing import QuartRule
from quart_trio import QuartTrio

from leosuite._compat import werkzeug as compat


def app_with(rule_class: type[QuartRule]) -> QuartTrio:
    app = QuartTrio("rules", static_folder=None)
    app.url_rule_class = rule_class

    async def view(**_: object) -> str:
        return ""

    app.add_url_rule("/servers/<name>/files/<path:path>", "files", view, methods=["GET"])
    app.add_url_rule("/accounts/<int:account_id>", "account", view, methods=["GET"])
    return app


def test_the_pinned_werkzeug_gets_the_lazy_rule() -> None:
    assert compat.SUPPORTED, "werkzeug changed: check _compile_builder and WRITTEN_FOR"
    assert compat.rule_class() is not QuartRule


def test_lazy_rules_match_and_build_as_werkzeugs_own() -> None:
    lazy, plain = app_with(compat.rule_class()), app_with(QuartRule)
    for app in (lazy, plain):
        assert all(isinstance(r, app.url_rule_class) for r in app.url_map.iter_rules())
    cases = [
        ("files", {"name": "mc", "path": "world/level dat"}),
        ("files", {"name": "mc", "path": "a", "extra": "x y"}),  # an unknown value
        ("account", {"account_id": 7}),
    ]
    for endpoint, values in cases:
        built = [a.url_map.bind("localhost").build(endpoint, values) for a in (lazy, plain)]
        assert built[0] == built[1]
        again = lazy.url_map.bind("localhost").build(endpoint, values)  # compiled by now
        assert again == built[1]
    adapter = lazy.url_map.bind("localhost")
    assert adapter.match("/accounts/7", method="GET") == ("account", {"account_id": 7})
    assert adapter.match("/servers/mc/files/a/b", method="GET") == (
        "files",
        {"name": "mc", "path": "a/b"},
    )
