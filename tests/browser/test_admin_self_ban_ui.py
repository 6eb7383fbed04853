"""A ban of the browser's own address on the Bans page: the daemon refuses it until
confirmed, so the page asks first (an accessible dialog) and a cancel adds nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .axe import assert_accessible
from .conftest import ADMIN_PASSWORD, DashboardDaemon, open_logged_in

expect = pytest.importorskip("playwright.sync_api").expect


def test_banning_ones_own_address_asks_first(dashboard: DashboardDaemon, make_page: Any) -> None:
    page = make_page(1280, 860)
    open_logged_in(page, dashboard, "#/admin/bans")
    expect(page.get_by_role("status").filter(has_text="No bans in force")).to_be_visible()

    page.get_by_label("Address or network").fill("127.0.0.0/8")
    page.get_by_role("button", name="Add ban").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("covers the address this browser uses")
    expect(dialog).to_contain_text("signs you out")
    assert_accessible(page)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)

    expect(page.get_by_role("button", name="Add ban")).to_be_enabled()
    expect(page.locator("#conn-state[data-state=open]")).to_have_count(1)
    banned = httpx.get(dashboard.admin + "/banlist/", auth=("admin", ADMIN_PASSWORD), timeout=15)
    assert banned.json() == []
