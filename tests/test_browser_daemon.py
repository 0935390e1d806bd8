"""Browser test against the real appliance: ``flexscore run`` on the bundled demo video.

What a new user does after the README's run command: open the page, log in, start a trial
with the Start button, watch it count down and record, read the result (a score and the
flexion plot), save a clinician score, and export the session as FHIR. Unlike
``test_browser_web.py`` (the page over a fake appliance), every part here is real: the file
camera, the TFLite tracker, the scorer, the SQLite store and waitress, in their own process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import PASSWORD, TRIAL_TIMEOUT_S, Daemon
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from test_browser_web import ARTIFACTS, WAIT_MS, _login, _no_sideways_scroll, browser

pytestmark = pytest.mark.browser

TRIAL_WAIT_MS = int(TRIAL_TIMEOUT_S * 1000)
__all__ = ["browser"]  # the fixture, shared with test_browser_web


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = Daemon(tmp_path_factory.mktemp("browser-daemon") / "state")
    try:
        d.wait_ready()
        yield d.base
        rc, _took = d.terminate()
        assert rc == 0, f"daemon exit code {rc}:\n{d.output()[-3000:]}"
    finally:
        d.cleanup()


def test_a_trial_on_the_real_appliance(daemon: str, browser: Any) -> None:
    ctx = browser.new_context(viewport={"width": 800, "height": 480}, accept_downloads=True)
    page = ctx.new_page()
    try:
        _login(page, daemon, PASSWORD)
        page.get_by_label("Patient code").fill("DEMO01")
        # The page says which hand the camera sees: the bundled clip (a mirrored selfie view)
        # shows a right hand.
        page.wait_for_selector("#hand-in-view:has-text('right hand in view')", timeout=WAIT_MS)
        page.locator("label.toggle", has_text="Right").click()
        page.get_by_role("button", name="Start").click()
        page.wait_for_selector(".state-recording", timeout=TRIAL_WAIT_MS)
        page.screenshot(path=str(ARTIFACTS / "daemon-recording-800.png"))
        page.wait_for_url(
            re.compile(r".*/results/\d+$"), timeout=TRIAL_WAIT_MS, wait_until="domcontentloaded"
        )
        trial_id = int(page.url.rsplit("/", 1)[1])
        page.screenshot(path=str(ARTIFACTS / "daemon-result-800.png"), full_page=True)
        _no_sideways_scroll(page, "result")
        clipped = page.evaluate(
            "[...document.querySelectorAll('.card')].filter(c => c.scrollWidth > c.clientWidth).length"
        )
        assert clipped == 0, "a card's content is wider than the card"

        # The real pipeline on the real clip: a score 0-2 (or, honestly, "not scorable"
        # with its reasons) and the flexion plot with its axes.
        last = page.request.get(f"{daemon}/api/status").json()["last_trial"]  # as the clinician
        assert last["id"] == trial_id
        if last["status"] == "scored":
            assert page.locator(".score").inner_text()[0] in "012"
            assert page.locator("svg.plot").count() == 1
            assert page.get_by_text("Time since recording started (s)").count() == 1
        else:
            assert last["status"] == "not_scorable", last
            assert page.get_by_text("Not scorable").count() >= 1

        page.locator("label.toggle", has_text="2 · Full").click()
        page.get_by_label("Comment").fill("demo clip, full fist")
        page.get_by_role("button", name="Save my score").click()
        page.wait_for_selector("text=Your score was saved", timeout=WAIT_MS)

        with page.expect_download(timeout=WAIT_MS) as dl:
            page.get_by_role("link", name="Session as FHIR").click()
        doc = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
        assert QuestionnaireResponse.model_validate(doc).status == "completed"
        flex = next(it for it in doc["item"] if it["linkId"] == "mass-flexion")
        assert flex["answer"][0]["valueInteger"] == 2
    finally:
        ctx.close()
