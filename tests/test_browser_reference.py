"""Browser check of the reference flow (issue 10) on the Pi screen and a desktop: a clinician
ticks "Record the other (unaffected) hand first", the page says a reference is recording, its
result says "Reference recorded"; the next trial's result shows both hands and the ratios,
and no page scrolls sideways. Screenshots go where ``test_browser_web`` puts its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from test_browser_web import WAIT_MS, _login, _no_sideways_scroll, _shot, auto_fake, browser, serve_fake

from device.web.fake import FakeServices

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with test_browser_web


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeServices]]:
    with auto_fake() as fake:
        fake.scores = None
        with serve_fake(fake) as url:
            yield url, fake


@pytest.mark.parametrize(("width", "height"), ((800, 480), (1280, 800)), ids=["800x480", "1280x800"])
def test_reference_then_affected_hand_in_the_browser(
    served: tuple[str, FakeServices], browser: Any, width: int, height: int
) -> None:
    server, fake = served
    code = f"R{width}"
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    try:
        _login(page, server)
        page.get_by_label("Patient code").fill(code)
        page.locator("label.toggle", has_text="Right").click()
        fake.next_score = 2  # the unaffected hand makes a fist
        page.get_by_label("Record the other (unaffected) hand first").check()
        _no_sideways_scroll(page, "live with the reference option")
        page.get_by_role("button", name="Start").click()
        page.wait_for_selector("#reference-note:not([hidden])", timeout=WAIT_MS)
        assert "left hand" in page.locator("#reference-note").inner_text()
        _shot(page, "live-reference", width)
        page.wait_for_url(re.compile(r".*/results/\d+$"), timeout=WAIT_MS, wait_until="domcontentloaded")
        assert page.locator("#reference-recorded").inner_text() == "Reference recorded"
        assert page.locator("#reference-profile tbody tr").count() == 4
        _shot(page, "result-reference", width)
        _no_sideways_scroll(page, "reference result")

        page.get_by_role("link", name="New trial").click()
        page.wait_for_selector("#session-reference", timeout=WAIT_MS)
        page.get_by_label("Patient code").fill(code + "X")  # another patient: not compared (issue 18)
        assert page.locator("#session-reference").is_hidden()
        page.get_by_label("Patient code").fill(code)
        assert page.locator("#session-reference").is_visible()
        assert not page.get_by_label("Record the other (unaffected) hand first").is_checked()
        fake.next_score = 2  # (the fake draws a full closure most reliably in frame)
        page.get_by_role("button", name="Start").click()
        page.wait_for_selector(".state-recording", timeout=WAIT_MS)
        page.wait_for_url(re.compile(r".*/results/\d+$"), timeout=WAIT_MS, wait_until="domcontentloaded")
        last = fake.store.last_trial()
        assert last is not None and last.status == "scored", (last, page.locator("main").inner_text()[:600])
        page.wait_for_selector("#score-mode", timeout=WAIT_MS)
        assert "Compared with the unaffected hand" in page.locator("#score-mode").inner_text()
        assert page.locator("#ratios tbody tr").count() == 4
        assert page.locator("svg.plot polyline.reference").count() == 5
        _shot(page, "result-vs-reference", width)
        _no_sideways_scroll(page, "result against the reference")
    finally:
        ctx.close()
