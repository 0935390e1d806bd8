"""Server-rendered SVG plots (no JavaScript, no chart library): pure functions → markup.

* :func:`trial_series` turns stored landmarks into the curves the result page shows: each
  finger's flexion (the range-of-motion rule's closure, % of a full fist) and the hand's
  openness (mean fingertip-to-palm-centre distance, in palm sizes) over the trial, in s.
* :func:`flexion_svg` draws them in two panels with axes, units and a legend; with a
  ``reference`` (the unaffected hand's trial, issue 10) its curves are drawn on the same
  axes as thin, light lines of the same colour and dash, named in a second legend row.
* :func:`history_svg` draws scores over time (automatic and clinician).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from markupsafe import Markup, escape

from device.errors import InputError
from device.scoring.rules import FINGERS, finger_closure
from device.trial.features import feature_names, trial_features
from device.trial.types import Trial
from device.web.i18n import N_, translate

log = logging.getLogger(__name__)

# Okabe-Ito colours (distinguishable with colour-blindness) plus a dash pattern each.
FINGER_STYLE = {
    "index": ("#0072B2", ""),
    "middle": ("#D55E00", "8 4"),
    "ring": ("#009E73", "2 4"),
    "pinky": ("#CC79A7", "10 4 2 4"),
}
OPENNESS_COLOUR = "#222222"
AUTO_COLOUR = "#0072B2"
LABEL_COLOUR = "#D55E00"
NS_COLOUR = "#6b6b6b"

W = 720
LEFT, RIGHT = 64, 16


@dataclass(frozen=True)
class TrialSeries:
    """Curves over a trial, resampled to evenly spaced times.

    Attributes:
        t: seconds from the start of the recording [N].
        flexion: % of a full fist per finger [N, 4] (index, middle, ring, pinky).
        openness: mean fingertip-to-palm distance in palm sizes [N].
        method: "hand", "3d" or "2d" (how the rule measured flexion).
    """

    t: np.ndarray
    flexion: np.ndarray
    openness: np.ndarray
    method: str


def trial_series(trial: Trial) -> TrialSeries:
    """The result page's curves. Raises InputError when the trial has too little to plot."""
    closure, method = finger_closure(trial)
    feats = trial_features(trial, "2d", steps=closure.shape[0])
    openness = feats[:, feature_names("2d").index("openness2d")]
    t = np.linspace(0.0, trial.duration, closure.shape[0])
    return TrialSeries(t, closure * 100.0, openness.astype(np.float64), method)


def try_series(trial: Trial | None) -> tuple[TrialSeries | None, str | None]:
    """(series, None) or (None, why there is no plot)."""
    if trial is None:
        return None, "no landmarks were stored for this trial"
    try:
        return trial_series(trial), None
    except InputError as exc:
        return None, str(exc)


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    span = max(hi - lo, 1e-9)
    raw = span / target
    mag = 10 ** np.floor(np.log10(raw))
    step = float(min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=mag * 10))
    start = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(start, hi + step * 1e-6, step)]


class _Panel:
    """One plot area: data → pixel mapping, axes and lines."""

    def __init__(
        self, top: float, height: float, x: tuple[float, float], y: tuple[float, float]
    ) -> None:
        self.top, self.height = top, height
        self.x0, self.x1 = x
        self.y0, self.y1 = y
        self.width = W - LEFT - RIGHT

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / max(self.x1 - self.x0, 1e-9) * self.width

    def py(self, y: float) -> float:
        return self.top + self.height - (y - self.y0) / max(self.y1 - self.y0, 1e-9) * self.height

    def axes(
        self,
        ylabel: str,
        yticks: Sequence[float],
        xticks: Sequence[float] = (),
        xlabel: str = "",
        ytick_text: dict[float, str] | None = None,
        xtick_text: dict[float, str] | None = None,
    ) -> list[str]:
        out = [
            f'<rect x="{LEFT}" y="{self.top}" width="{self.width}" height="{self.height}" '
            'fill="#ffffff" stroke="#555555" stroke-width="1"/>'
        ]
        for v in yticks:
            y = self.py(v)
            text = (ytick_text or {}).get(v, _fmt(v))
            out.append(
                f'<line x1="{LEFT}" x2="{LEFT + self.width}" y1="{y:.1f}" y2="{y:.1f}" '
                'stroke="#e0e0e0" stroke-width="1"/>'
            )
            out.append(
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{escape(text)}</text>'
            )
        for v in xticks:
            x = self.px(v)
            text = (xtick_text or {}).get(v, _fmt(v))
            bottom = self.top + self.height
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}" stroke="#555555"/>'
            )
            half = len(text) * 3.7  # about half the label's width at the tick font size
            anchor, tx = "middle", x
            if x + half > W - 2:  # the last label would be cut at the right edge
                anchor, tx = "end", min(W - 2.0, x + half)
            out.append(
                f'<text x="{tx:.1f}" y="{bottom + 18}" text-anchor="{anchor}" class="tick">'
                f"{escape(text)}</text>"
            )
        cy = self.top + self.height / 2
        out.append(
            f'<text x="14" y="{cy:.1f}" transform="rotate(-90 14 {cy:.1f})" text-anchor="middle" '
            f'class="axis">{escape(ylabel)}</text>'
        )
        if xlabel:
            out.append(
                f'<text x="{LEFT + self.width / 2:.1f}" y="{self.top + self.height + 36}" '
                f'text-anchor="middle" class="axis">{escape(xlabel)}</text>'
            )
        return out

    def line(
        self,
        xs: np.ndarray,
        ys: np.ndarray,
        colour: str,
        dash: str = "",
        width: float = 2.5,
        opacity: float = 1.0,
        css: str = "",
    ) -> str:
        pts = " ".join(
            f"{self.px(float(a)):.1f},{self.py(float(b)):.1f}" for a, b in zip(xs, ys, strict=True)
        )
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        if opacity < 1.0:
            dash_attr += f' stroke-opacity="{opacity:g}"'
        if css:
            dash_attr += f' class="{css}"'
        return (
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{width}"'
            f' stroke-linejoin="round"{dash_attr}/>'
        )


def _svg(height: float, title: str, desc: str, body: list[str], ident: str) -> Markup:
    head = (
        f'<svg class="plot" viewBox="0 0 {W} {height:.0f}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


REFERENCE_OPACITY = 0.45
REFERENCE_WIDTH = 1.5


def flexion_svg(series: TrialSeries, reference: TrialSeries | None = None) -> Markup:
    """Two panels: finger flexion (% of a fist) and hand openness (palm sizes) over time (s).

    With ``reference`` (the unaffected hand) both hands are on the same axes: the affected
    hand in thick lines, the reference in thin, light lines of the same style."""
    t = series.t
    tmax = float(t[-1]) if t.size and t[-1] > 0 else 1.0
    if reference is not None and reference.t.size:
        tmax = max(tmax, float(reference.t[-1]))
    xt = _ticks(0.0, tmax)
    shift = 22 if reference is not None else 0  # room for the second legend row
    top = _Panel(34 + shift, 170, (0.0, tmax), (0.0, 100.0))
    body = top.axes(translate("Flexion (% of fist)"), (0, 25, 50, 75, 100), xt)
    if reference is not None:
        for k, name in enumerate(FINGERS):
            colour, dash = FINGER_STYLE[name]
            body.append(
                top.line(
                    reference.t, reference.flexion[:, k], colour, dash,
                    REFERENCE_WIDTH, REFERENCE_OPACITY, "reference",
                )
            )  # fmt: skip
    for k, name in enumerate(FINGERS):
        colour, dash = FINGER_STYLE[name]
        body.append(top.line(t, series.flexion[:, k], colour, dash))
    # Legend above the top panel.
    x = LEFT
    for name in FINGERS:
        colour, dash = FINGER_STYLE[name]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(
            f'<line x1="{x}" x2="{x + 30}" y1="16" y2="16" stroke="{colour}" stroke-width="3"{dash_attr}/>'
            f'<text x="{x + 36}" y="21" class="legend">{escape(translate(FINGER_NAMES[name]))}</text>'
        )
        x += 112
    body.append(
        f'<line x1="{x}" x2="{x + 30}" y1="16" y2="16" stroke="{OPENNESS_COLOUR}" stroke-width="3"/>'
        f'<text x="{x + 36}" y="21" class="legend">{escape(translate("Openness"))}</text>'
    )
    if reference is not None:
        body.append(
            f'<line x1="{LEFT}" x2="{LEFT + 30}" y1="38" y2="38" stroke="{OPENNESS_COLOUR}" '
            'stroke-width="3"/>'
            f'<text x="{LEFT + 36}" y="43" class="legend">{escape(translate("Affected hand (thick)"))}</text>'
            f'<line x1="{LEFT + 224}" x2="{LEFT + 254}" y1="38" y2="38" stroke="{OPENNESS_COLOUR}" '
            f'stroke-width="{REFERENCE_WIDTH}" stroke-opacity="{REFERENCE_OPACITY:g}"/>'
            f'<text x="{LEFT + 260}" y="43" class="legend">'
            f'{escape(translate("Unaffected hand, the reference (thin, light)"))}</text>'
        )
    op = series.openness
    omax = max(1.0, float(np.nanmax(op)) * 1.1) if op.size else 1.0
    if reference is not None and reference.openness.size:
        omax = max(omax, float(np.nanmax(reference.openness)) * 1.1)
    yt = [v for v in _ticks(0.0, omax, 3) if v <= omax]
    low = _Panel(244 + shift, 100, (0.0, tmax), (0.0, omax))
    body += low.axes(
        translate("Openness (palm sizes)"), yt, xt, translate("Time since recording started (s)")
    )
    if reference is not None:
        body.append(
            low.line(
                reference.t, reference.openness, OPENNESS_COLOUR, "",
                REFERENCE_WIDTH, REFERENCE_OPACITY, "reference",
            )
        )  # fmt: skip
    body.append(low.line(t, op, OPENNESS_COLOUR))
    peaks = ", ".join(f"{n} {float(np.max(series.flexion[:, k])):.0f}%" for k, n in enumerate(FINGERS))
    desc = (
        f"Finger flexion and hand openness over {tmax:.1f} s. Highest flexion: {peaks}. "
        f"Openness from {float(np.min(op)):.2f} to {float(np.max(op)):.2f} palm sizes."
    )
    title = translate("Finger flexion and hand openness over the trial")
    if reference is not None:
        ref_peaks = ", ".join(
            f"{n} {float(np.max(reference.flexion[:, k])):.0f}%" for k, n in enumerate(FINGERS)
        )
        desc += f" Unaffected hand (reference, thin light lines): highest flexion {ref_peaks}."
        title = translate("Finger flexion of the affected and the unaffected hand over the trial")
    return _svg(386 + shift, title, desc, body, "flex")


@dataclass(frozen=True)
class HistoryPoint:
    """One trial on the history plot (``score``/``label`` None: not scored / not labelled)."""

    at: datetime
    score: int | None
    label: int | None
    status: str


def _date_text(ts: float, fmt: str) -> str:
    """A history tick: the local date (and time) of ``ts``, in the page's language."""
    from babel.dates import format_datetime

    from device.web.i18n import page_language

    try:
        lang = page_language()
    except RuntimeError:  # outside a request
        lang = "en"
    return str(format_datetime(datetime.fromtimestamp(ts).astimezone(), fmt, locale=lang))


FINGER_NAMES = {"thumb": N_("Thumb"), "index": N_("Index"), "middle": N_("Middle"), "ring": N_("Ring"),
                "pinky": N_("Little")}  # fmt: skip


def history_svg(points: Sequence[HistoryPoint]) -> Markup:
    """Scores (0/1/2, "NS" for not scorable) over time: automatic ● and clinician ◆."""
    if not points:
        return _svg(
            60, translate("Scores over time"), translate("No trials yet."),
            [f'<text x="20" y="35">{escape(translate("No trials yet."))}</text>'], "hist",
        )
    ts = [p.at.timestamp() for p in points]
    lo, hi = min(ts), max(ts)
    if hi - lo < 3600:
        lo, hi = lo - 1800, hi + 1800
    pad = (hi - lo) * 0.04
    panel = _Panel(34, 170, (lo - pad, hi + pad), (-1.5, 2.5))
    n_ticks = 5
    xt = [lo + (hi - lo) * i / (n_ticks - 1) for i in range(n_ticks)]
    fmt = "d MMM" if hi - lo > 2 * 86400 else "d MMM HH:mm"
    xtext = {v: _date_text(v, fmt) for v in xt}
    body = panel.axes(
        translate("Score"), (-1.0, 0.0, 1.0, 2.0), xt, translate("Date"),
        ytick_text={-1.0: translate("NS")}, xtick_text=xtext,
    )
    ordered = sorted(zip(ts, points, strict=True), key=lambda tp: tp[0])
    scored = [(x, p.score) for x, p in ordered if p.score is not None]
    if len(scored) > 1:
        xs = np.array([s[0] for s in scored])
        ys = np.array([s[1] for s in scored], dtype=float)
        body.append(panel.line(xs, ys, AUTO_COLOUR, width=1.5))
    for x, p in ordered:
        px = panel.px(x)
        if p.score is not None:
            body.append(
                f'<circle cx="{px:.1f}" cy="{panel.py(p.score):.1f}" r="6" fill="{AUTO_COLOUR}"/>'
            )
        elif p.status in ("rejected", "error"):
            y = panel.py(-1.0)
            body.append(
                f'<path d="M{px - 5:.1f},{y - 5:.1f}L{px + 5:.1f},{y + 5:.1f}M{px - 5:.1f},{y + 5:.1f}'
                f'L{px + 5:.1f},{y - 5:.1f}" stroke="{NS_COLOUR}" stroke-width="2.5"/>'
            )
        if p.label is not None:
            y = panel.py(p.label)
            body.append(
                f'<path d="M{px:.1f},{y - 9:.1f}L{px + 9:.1f},{y:.1f}L{px:.1f},{y + 9:.1f}'
                f'L{px - 9:.1f},{y:.1f}Z" fill="none" stroke="{LABEL_COLOUR}" stroke-width="2.5"/>'
            )
    body.append(
        f'<circle cx="{LEFT + 8}" cy="14" r="6" fill="{AUTO_COLOUR}"/>'
        f'<text x="{LEFT + 20}" y="19" class="legend">{escape(translate("Automatic score"))}</text>'
        f'<path d="M{LEFT + 208},5L{LEFT + 217},14L{LEFT + 208},23L{LEFT + 199},14Z" fill="none" '
        f'stroke="{LABEL_COLOUR}" stroke-width="2.5"/>'
        f'<text x="{LEFT + 224}" y="19" class="legend">{escape(translate("Clinician score"))}</text>'
        f'<text x="{LEFT + 400}" y="19" class="legend">{escape(translate("NS = not scorable (×)"))}</text>'
    )
    n_scored = len(scored)
    desc = translate("%(n)s trials, %(scored)s scored automatically, from %(first)s to %(last)s.") % {
        "n": len(points), "scored": n_scored, "first": xtext[xt[0]], "last": xtext[xt[-1]],
    }  # fmt: skip
    return _svg(250, translate("Scores over time"), desc, body, "hist")
