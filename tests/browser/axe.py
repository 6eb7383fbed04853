"""axe-core accessibility checks for dashboard pages (axe-core as packaged by
``axe-playwright-python``, a test dependency, so nothing is fetched at run time)."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

_AXE = Axe()


def violations(page: Any) -> list[str]:
    """axe-core's violations on the page as it is now, one line each (rule, impact,
    help and the first elements it names)."""
    results = _AXE.run(page)
    found = []
    for violation in results.response["violations"]:
        targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
        found.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']}: {'; '.join(targets)}"
        )
    return found


def assert_accessible(page: Any) -> None:
    """Fail with axe-core's violations if the page as it is now has any."""
    found = violations(page)
    assert not found, "axe-core violations:\n" + "\n".join(found)
