"""Issue 18 in the browser: with no hand in view the live page says what to fix, the recording
does not start, and the page says why (and stays on the live page: nothing was recorded).
Then the hand is there, closes and opens on cue, and leaves the recording: it stops early
and the result page says why.

Playwright + Debian chromium at the touchscreen's 800×480, over the fake appliance (real
recorder with hand watching, real store) served by waitress.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from test_browser_web import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, _login, _require_browser, serve_fake

from device.config import TrialConfig
from device.trial.recorder import RecorderTiming
from device.web.fake import FakeServices

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fake_url() -> Iterator[tuple[FakeServices, str]]:
    timing = RecorderTiming.from_config(
        TrialConfig(hand_wait_s=2.0),
        countdown_s=1.0, recording_s=3.0, result_hold_s=60.0, rejected_hold_s=60.0,
    )  # fmt: skip
    with FakeServices(auto=True, timing=timing) as fake:
        fake.scores = None
        with serve_fake(fake) as url:
            yield fake, url


def test_no_hand_the_page_says_why_and_a_lost_hand_stops_the_recording(
    fake_url: tuple[FakeServices, str],
) -> None:
    fake, base = fake_url
    sync_playwright = _require_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page: Any = browser.new_page(viewport={"width": 800, "height": 480})
        try:
            fake.hand_visible = False
            _login(page, base)
            prompt = page.locator("#prompt")
            page.wait_for_function(
                "document.getElementById('prompt').textContent.startsWith('No hand in view')", timeout=WAIT_MS
            )
            page.get_by_label("Patient code").fill("P001")
            page.locator("label.toggle", has_text="Right").click()
            page.get_by_role("button", name="Start").click()
            page.wait_for_selector(".state-rejected", timeout=WAIT_MS)
            assert "the recording did not start" in prompt.inner_text()
            assert re.search(r"/results/\d+$", page.url) is None  # nothing recorded: stays
            assert page.locator("#prompt").is_visible()

            fake.hand_visible = True
            fake.next_score = None  # the hand leaves once the recording starts
            page.get_by_role("button", name="Start").click()
            page.wait_for_selector(".state-recording", timeout=WAIT_MS)
            page.wait_for_url(re.compile(r".*/results/\d+$"), timeout=WAIT_MS, wait_until="domcontentloaded")
            assert page.get_by_text("so it was stopped").count() >= 1
        finally:
            browser.close()
