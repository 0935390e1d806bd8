"""Browser tests: Playwright drives Debian's chromium against the app served by waitress.

A person's path through the page on the fake appliance: log in, start a trial, see the
result with a score and a plot, enter a clinician score, export the session as FHIR.
Screenshots at 800×480 (the Pi's touchscreen) and 1280×800 (a tablet or laptop) are kept in
``build/test-artifacts/browser/`` (or ``$FLEXSCORE_ARTIFACTS``); no page may scroll sideways.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from test_web_support import PASSWORD, web_config

from device.trial.recorder import RecorderTiming
from device.web import create_app, shutdown, waitress_threads
from device.web.fake import FakeServices
from device.web.server import ServerThread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("FLEXSCORE_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "browser"
SIZES = ((800, 480), (1280, 800))
WAIT_MS = 30_000  # generous upper bound for a page or a trial; nothing asserts on time


def _require_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e .[dev])")
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    return sync_playwright


@contextlib.contextmanager
def serve_fake(fake: FakeServices) -> Iterator[str]:
    """Serve the app over ``fake`` with waitress on a free loopback port; yields the base URL.
    On exit the live streams end first (within a second), then the server stops."""
    import waitress

    cfg = web_config(max_streams=2)
    app = create_app(fake, cfg, flask_config={"SECRET_KEY": "browser-test"})
    srv = waitress.create_server(app, host="127.0.0.1", port=0, threads=waitress_threads(cfg.max_streams))
    running = ServerThread(srv, name="waitress-browser").start()
    try:
        yield f"http://127.0.0.1:{srv.effective_port}"
    finally:
        shutdown(app)
        streams = app.extensions["flexscore"].streams
        idle = threading.Event()
        for _ in range(200):  # bounded: at most ~10 s
            if streams.active == 0:
                break
            idle.wait(0.05)
        srv.task_dispatcher.shutdown()
        running.stop(10)


def auto_fake() -> FakeServices:
    """A fake appliance that runs trials by itself, with short timings."""
    return FakeServices(
        auto=True, timing=RecorderTiming(countdown_s=1.0, recording_s=2.0, result_hold_s=60.0)
    )


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The app over an auto-running fake, served by waitress on a free loopback port."""
    with auto_fake() as fake:
        fake.scores = None  # every trial: the score the test sets
        fake.next_score = 2
        fake.seed_history("P001", n=6)
        with serve_fake(fake) as url:
            yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _require_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _no_sideways_scroll(page: Any, what: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{what} scrolls sideways by {overflow}px"


def _shot(page: Any, name: str, width: int) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)


def _login(page: Any, base: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login", wait_until="domcontentloaded")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#video", timeout=WAIT_MS)


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_trial_result_label_and_fhir(server: str, browser: Any, width: int, height: int) -> None:
    ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = ctx.new_page()
    try:
        page.goto(f"{server}/login", wait_until="domcontentloaded")
        _shot(page, "login", width)
        _no_sideways_scroll(page, "login")
        _login(page, server)
        page.get_by_label("Patient code").fill("P001")
        page.locator("label.toggle", has_text="Right").click()
        _no_sideways_scroll(page, "live")
        page.get_by_role("button", name="Start").click()
        page.wait_for_selector(".state-recording", timeout=WAIT_MS)
        _shot(page, "live-recording", width)
        page.wait_for_url(re.compile(r".*/results/\d+$"), timeout=WAIT_MS, wait_until="domcontentloaded")

        # The result: a large score, probabilities, a plot with axes.
        assert page.locator(".score").inner_text().startswith("2")
        assert page.get_by_text("Full flexion").first.is_visible()
        assert page.locator("svg.plot").count() == 1
        assert page.get_by_text("Time since recording started (s)").count() == 1
        _shot(page, "result", width)
        _no_sideways_scroll(page, "result")

        # The clinician's own score and comment, stored beside the automatic one.
        page.locator("label.toggle", has_text="1 · Partial").click()
        page.get_by_label("Comment").fill("index and middle only")
        page.get_by_role("button", name="Save my score").click()
        page.wait_for_selector("text=Your score was saved", timeout=WAIT_MS)
        assert page.get_by_text("index and middle only").count() == 1

        # Export the session as FHIR and validate what was downloaded.
        with page.expect_download(timeout=WAIT_MS) as dl:
            page.get_by_role("link", name="Session as FHIR").click()
        doc = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
        qr = QuestionnaireResponse.model_validate(doc)
        assert qr.status == "completed"
        flex = next(it for it in doc["item"] if it["linkId"] == "mass-flexion")
        answer = flex["answer"][0]  # the clinician's 1 overrides the automatic 2
        assert answer["valueInteger"] == 1
        assert answer["item"][0]["answer"] == [{"valueString": "clinician"}]

        for path, name in (
            ("/history?patient=P001", "history"),
            ("/status", "status"),
            ("/export", "export"),
        ):
            page.goto(f"{server}{path}", wait_until="domcontentloaded")
            _shot(page, name, width)
            _no_sideways_scroll(page, name)
    finally:
        ctx.close()


def test_patient_mode_and_the_stream_cap(server: str, browser: Any) -> None:
    """Patient mode starts from one tap; a third live viewer falls back to still pictures."""
    ctx = browser.new_context(viewport={"width": 800, "height": 480})
    try:
        pages = []
        for _ in range(3):
            page = ctx.new_page()
            page.goto(f"{server}/login", wait_until="domcontentloaded")
            page.get_by_role("button", name="Start in patient mode").click()
            page.wait_for_selector("#video", timeout=WAIT_MS)
            pages.append(page)
        note = pages[2].locator("#video-note")
        note.wait_for(state="visible", timeout=WAIT_MS)
        assert "still picture" in note.inner_text()
        assert pages[0].get_by_role("link", name="History").count() == 0
        _shot(pages[0], "patient-live", 800)
    finally:
        ctx.close()
