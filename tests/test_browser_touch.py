"""Browser acceptance of issue 18 (Playwright + Debian chromium, the page over the fake
appliance) on the Pi's 800×480 touchscreen and a 1280×800 laptop:

* Start, then Cancel during a trial, and the "hand in view" line are inside the window
  without scrolling, for the clinician and for the patient; touch targets are ≥ 48 px;
* no element on any page is wider than the window (tables stack on the small screen);
* every error page a browser gets is text/html; a German browser gets German pages;
* the printable report prints on one A4 page without the bar or forms (Chromium's PDF);
* two labels on one trial: the page, the API, the history and the exports show the second
  as current and keep the first with its comment.
Screenshots go where ``test_browser_web`` puts its own."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_browser_web import WAIT_MS, _login, _shot, browser, serve_fake

from device.trial.recorder import RecorderTiming
from device.web.fake import FakeServices

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with test_browser_web
SIZES = ((800, 480), (1280, 800))
IDS = [f"{w}x{h}" for w, h in SIZES]

# Elements wider than the window or reaching past its right edge (visible ones only).
TOO_WIDE_JS = """() => {
  const w = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden') continue;
    if (el.closest('.visually-hidden, .skip')) continue;
    if (r.right > w + 0.5 || r.width > w + 0.5) {
      out.push(el.tagName + (el.id ? '#' + el.id : '') + '.' + el.className + ' ' + Math.round(r.right));
    }
  }
  return out.slice(0, 10);
}"""
# Touch targets smaller than 48 px (buttons, links styled as buttons, fields, choices, the bar).
SMALL_TARGETS_JS = """() => {
  const sel = 'button, .btn, select, input:not([type=hidden]):not([type=radio]):not([type=checkbox]), '
    + 'label.toggle > span, label.check, .bar nav a';
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || el.closest('[hidden], .visually-hidden, .skip')) continue;
    if (r.height < 47.5) out.push((el.id || el.textContent.trim().slice(0, 20)) + ' ' + r.height);
  }
  return out;
}"""


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeServices]]:
    """A fake that runs trials by itself, with a countdown long enough to press Cancel."""
    timing = RecorderTiming(countdown_s=3.0, recording_s=3.0, result_hold_s=60.0)
    with FakeServices(auto=True, timing=timing) as fake:
        fake.scores = None
        fake.next_score = 2
        fake.seed_history("P001", n=4)
        with serve_fake(fake) as url:
            yield url, fake


def _in_view(page: Any, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    vw, vh = page.viewport_size["width"], page.viewport_size["height"]
    assert box is not None, f"{selector} is not shown"
    assert page.evaluate("window.scrollY") == 0
    assert box["x"] >= 0 and box["x"] + box["width"] <= vw, (selector, box, vw)
    assert box["y"] >= 0 and box["y"] + box["height"] <= vh, (selector, box, vh)


def _not_too_wide(page: Any, what: str) -> None:
    assert page.evaluate(TOO_WIDE_JS) == [], f"{what}: elements wider than the window"


@pytest.mark.parametrize("mode", ["clinician", "patient"])
@pytest.mark.parametrize(("width", "height"), SIZES, ids=IDS)
def test_start_and_cancel_in_view(
    served: tuple[str, FakeServices], browser: Any, width: int, height: int, mode: str
) -> None:
    server, _fake = served
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    try:
        _login(page, server)
        page.get_by_label("Patient code").fill(f"T{width}{mode[0]}")
        page.locator("label.toggle", has_text="Right").click()
        if mode == "patient":  # the clinician hands the unit over to this patient
            page.get_by_role("button", name="Hand over to the patient").click()
            page.wait_for_selector("#patient-note", timeout=WAIT_MS)
            assert page.locator(".role-patient").count() == 1
            hint = "document.getElementById('state-hint')"
            size = page.evaluate(f"parseFloat(getComputedStyle({hint}).fontSize)")
            assert size >= 20, f"patient instructions are {size}px"
        _in_view(page, "#start")
        _in_view(page, "#hand-in-view")
        assert page.evaluate(SMALL_TARGETS_JS) == []
        _not_too_wide(page, f"live ({mode})")
        _shot(page, f"touch-live-{mode}", width)
        page.locator("#start").click()
        page.wait_for_selector("#cancel-form:not([hidden])", timeout=WAIT_MS)
        _in_view(page, "#cancel")
        _in_view(page, "#hand-in-view")
        _shot(page, f"touch-countdown-{mode}", width)
        page.locator("#cancel").click()
        page.wait_for_selector("#start:not([hidden])", timeout=WAIT_MS)
        _in_view(page, "#start")
    finally:
        ctx.close()


@pytest.mark.parametrize(("width", "height"), SIZES, ids=IDS)
def test_no_page_is_wider_than_the_window(
    served: tuple[str, FakeServices], browser: Any, width: int, height: int
) -> None:
    server, fake = served
    last = fake.store.last_trial()
    assert last is not None
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    try:
        for path in ("/login", "/help"):
            page.goto(f"{server}{path}", wait_until="domcontentloaded")
            _not_too_wide(page, path)
        _login(page, server)
        for path in (f"/results/{last.id}", f"/results/{last.id}/report", "/history?patient=P001",
                     "/status", "/export", "/validation", "/no/such/page"):  # fmt: skip
            page.goto(f"{server}{path}", wait_until="domcontentloaded")
            _not_too_wide(page, path)
            assert page.evaluate(SMALL_TARGETS_JS) == [], path
            _shot(page, "touch-" + re.sub(r"\W+", "-", path.strip("/")), width)
    finally:
        ctx.close()


def test_error_pages_german_and_print(served: tuple[str, FakeServices], browser: Any) -> None:
    server, fake = served
    ctx = browser.new_context(viewport={"width": 800, "height": 480}, locale="de-DE")
    page = ctx.new_page()
    try:
        page.goto(f"{server}/login", wait_until="domcontentloaded")
        assert page.locator("html").get_attribute("lang") == "de"
        page.get_by_role("button", name="Im Patientenmodus starten").click()
        page.wait_for_selector("#video", timeout=WAIT_MS)
        assert page.locator("#start").inner_text() == "Start"
        assert "Hilfe" in page.locator(".bar nav").inner_text()
        for path, code in (("/history", 403), ("/results/99999", 404), ("/nowhere", 404)):
            resp = page.goto(f"{server}{path}", wait_until="domcontentloaded")
            assert resp is not None and resp.status == code, path
            assert resp.headers["content-type"].startswith("text/html"), path
            assert page.locator("h1").count() == 1 and "<" not in page.locator("h1").inner_text()
        assert "Nicht gefunden" in page.locator("h1").inner_text()
    finally:
        ctx.close()
    last = next(t for t in fake.store.list_trials(limit=50) if t.status == "scored")
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    try:
        _login(page, server)
        for path in (f"/results/{last.id}/report", "/help"):
            page.goto(f"{server}{path}", wait_until="networkidle")
            pdf = page.pdf(format="A4", print_background=True)
            pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
            assert pages == 1, f"{path} prints on {pages} A4 pages"
        page.emulate_media(media="print")  # (after page.pdf: it prints with the emulated media)
        assert page.locator("#print").is_hidden() and page.locator("header.bar").count() == 0
    finally:
        ctx.close()


def test_two_labels_in_the_browser(served: tuple[str, FakeServices], browser: Any) -> None:
    server, fake = served
    trial_id = fake.add_past_trial("L001", "left", 2, datetime.now(UTC) - timedelta(minutes=5))
    trial = fake.store.get_trial(trial_id)
    assert trial is not None
    ctx = browser.new_context(viewport={"width": 800, "height": 480})
    page = ctx.new_page()
    try:
        _login(page, server)
        page.goto(f"{server}/results/{trial.id}", wait_until="domcontentloaded")
        for score, comment in (("1 · Partial", "mis-tap"), ("2 · Full", "full fist after all")):
            page.locator("label.toggle", has_text=score).click()
            page.get_by_label("Comment").fill(comment)
            page.get_by_role("button", name="Save my score").click()
            page.wait_for_selector("text=Your score was saved", timeout=WAIT_MS)
        assert "full fist after all" in page.locator("#label-history li.current").inner_text()
        assert "mis-tap" in page.locator("#label-history li.replaced").inner_text()
        _shot(page, "touch-labels", 800)
        api = page.request.get(f"{server}/api/trials/{trial.id}").json()
        assert api["label"]["score"] == 2
        history = [(h["score"], h["comment"]) for h in api["label_history"]]
        assert history == [(1, "mis-tap"), (2, "full fist after all")]
        page.goto(f"{server}/history?patient=L001", wait_until="domcontentloaded")
        assert page.locator("td.clinician-label").first.inner_text().startswith("2")
        text = page.request.get(f"{server}/export/trials.csv?patient=L001").text()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows[0]["clinician_score"] == "2"
        assert json.loads(rows[0]["earlier_labels"])[0]["comment"] == "mis-tap"
        doc = page.request.get(f"{server}/export/trials.json?patient=L001").json()
        assert doc["trials"][0]["label"]["comment"] == "full fist after all"
        day = trial.started_at.astimezone().date().isoformat()
        fhir = page.request.get(f"{server}/export/fhir/L001/{day}.json").json()
        group = next(it for it in fhir["item"] if it["linkId"] == "trial")
        ids = {it["linkId"]: it for it in group["item"]}
        assert ids["clinician-score"]["answer"] == [{"valueInteger": 2}]
        assert "mis-tap" in json.dumps(ids["clinician-label-history"])
    finally:
        ctx.close()
