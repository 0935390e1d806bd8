"""Site validation: how well the kit agrees with the clinicians' own scores.

Every trial a clinician also scores by hand is a labelled example. :func:`collect` reads them
from the store (public :class:`~device.store.Store` methods only, no SQL); :func:`report`
computes, in plain numpy, over the trials that carry a clinician label:

* counts per score (clinician and kit; "not scorable" counted apart),
* the confusion matrix (rows: clinician 0/1/2, columns: kit 0/1/2) over the trials both scored,
  and the full outcome table with "not scorable" on both sides (``outcomes``, 4 × 4),
* exact agreement and quadratic weighted kappa (:mod:`device.scoring.metrics`) with a seeded
  percentile-bootstrap 95 % interval (trials resampled with replacement),
* per-class recall (the kit's hit rate for each clinician score),
* the share the kit declined as not scorable, and how often it flagged a result for review,

overall and split by model version and by affected side. Below :data:`MIN_MEANINGFUL`
compared trials the report carries a warning that the numbers are not yet meaningful.
``flexscore validate`` and the clinician page ``/validation`` both render this one report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np

from device.errors import InputError
from device.scoring.metrics import confusion, quadratic_weighted_kappa
from device.store import Store

log = logging.getLogger(__name__)

MIN_MEANINGFUL = 30  # compared trials below which the figures are not yet meaningful
N_BOOT = 2000
BOOT_SEED = 20240531
LABELLED_STATUSES = ("scored", "rejected")  # outcomes the kit produced (not cancelled/error)
UNKNOWN = "unknown"
NO_SCORE = "none (declined)"
_PAGE = 500


@dataclass(frozen=True)
class LabelledTrial:
    """One trial with both the kit's outcome and a clinician's label.

    Attributes:
        trial_id: store id.
        started_at: when the trial started (UTC).
        side: affected side assessed ("left"/"right"; the patient's when the trial has none),
            or "unknown".
        kit_score: the kit's score 0/1/2, or None when it declined (not scorable).
        model_version: the model version stored with the kit's score (None: no score).
        review: the kit flagged the result for clinician review.
        label: the clinician's (newest) score 0/1/2, or None for "not scorable".
    """

    trial_id: int
    started_at: datetime
    side: str
    kit_score: int | None
    model_version: str | None
    review: bool
    label: int | None


def since_datetime(since: date | datetime | None) -> datetime | None:
    """A ``--since`` value as an aware UTC datetime (a date means its local midnight)."""
    if since is None:
        return None
    try:
        if isinstance(since, datetime):
            return since if since.tzinfo else since.astimezone(UTC)
        return datetime.combine(since, time()).astimezone(UTC)
    except (ValueError, OverflowError):  # e.g. 0001-01-01 east of UTC is in year 0
        raise InputError(f"the date {since.isoformat()} is out of range: give a date after 1900") from None


def collect(store: Store, since: date | datetime | None = None) -> list[LabelledTrial]:
    """The labelled trials in ``store`` (oldest first), started at or after ``since``."""
    start = since_datetime(since)
    sides: dict[int, str | None] = {}
    out: list[LabelledTrial] = []
    for status in LABELLED_STATUSES:
        offset = 0
        while True:
            page = store.list_trials(limit=_PAGE, offset=offset, status=status)
            for tr in page:
                if start is not None and tr.started_at < start:
                    continue
                labels = store.labels_for(tr.id)
                if not labels:
                    continue
                side = tr.side
                if side is None and tr.patient_id is not None:
                    if tr.patient_id not in sides:
                        p = store.get_patient(tr.patient_id)
                        sides[tr.patient_id] = p.affected_side if p else None
                    side = sides[tr.patient_id]
                s = tr.score
                scored = status == "scored" and s is not None and s.final_score in (0, 1, 2)
                out.append(
                    LabelledTrial(
                        trial_id=tr.id,
                        started_at=tr.started_at,
                        side=side or UNKNOWN,
                        kit_score=int(s.final_score) if scored and s is not None else None,
                        model_version=s.model_version if s is not None else None,
                        review=bool(s.review) if scored and s is not None else False,
                        label=labels[-1].score,
                    )
                )
            if len(page) < _PAGE:
                break
            offset += _PAGE
    out.sort(key=lambda r: (r.started_at, r.trial_id))
    return out


def qwk_many(cms: np.ndarray) -> np.ndarray:
    """Quadratic weighted kappa of a stack of 3×3 confusion matrices [B, 3, 3].

    Same definition as :func:`device.scoring.metrics.quadratic_weighted_kappa` (an empty or
    single-class matrix with no expected disagreement gives 1.0)."""
    k = cms.shape[-1]
    idx = np.arange(k)
    w = (idx[:, None] - idx[None, :]) ** 2 / (k - 1) ** 2
    cm = cms.astype(np.float64)
    n = cm.sum(axis=(1, 2))
    expected = cm.sum(axis=2)[:, :, None] * cm.sum(axis=1)[:, None, :] / np.maximum(n, 1)[:, None, None]
    den = (w * expected).sum(axis=(1, 2))
    num = (w * cm).sum(axis=(1, 2))
    safe = np.where(den > 0, den, 1.0)
    return np.asarray(np.where(den > 0, 1.0 - num / safe, 1.0))


def bootstrap_qwk(
    y: np.ndarray, pred: np.ndarray, n_boot: int = N_BOOT, seed: int = BOOT_SEED, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the QWK (pairs resampled with replacement); None for
    fewer than two pairs."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    n = len(y)
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    codes = (y * 3 + pred)[idx] + 9 * np.arange(n_boot)[:, None]
    cms = np.bincount(codes.ravel(), minlength=9 * n_boot).reshape(n_boot, 3, 3)
    kappas = qwk_many(cms)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(kappas, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _share(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _counts(values: Iterable[int | None]) -> dict[str, int]:
    out = {"0": 0, "1": 0, "2": 0, "not_scorable": 0}
    for v in values:
        out["not_scorable" if v is None else str(v)] += 1
    return out


def summarize_group(
    rows: Sequence[LabelledTrial], *, n_boot: int = N_BOOT, seed: int = BOOT_SEED
) -> dict[str, Any]:
    """The figures of one group of labelled trials (see the module doc)."""
    pairs = [(r.label, r.kit_score) for r in rows if r.label is not None and r.kit_score is not None]
    y = np.array([a for a, _ in pairs], dtype=np.int64)
    p = np.array([b for _, b in pairs], dtype=np.int64)
    cm = confusion(y, p) if pairs else np.zeros((3, 3), dtype=int)
    kit_scored = [r for r in rows if r.kit_score is not None]
    declined = [r for r in rows if r.kit_score is None]
    ci = bootstrap_qwk(y, p, n_boot, seed) if pairs else None
    full = np.zeros((4, 4), dtype=int)  # rows clinician 0/1/2/NS, columns kit 0/1/2/declined
    for r in rows:
        full[3 if r.label is None else r.label, 3 if r.kit_score is None else r.kit_score] += 1
    return {
        "n": len(rows),
        "pairs": len(pairs),
        "clinician_counts": _counts(r.label for r in rows),
        "kit_counts": _counts(r.kit_score for r in rows),
        "confusion": cm.tolist(),
        "outcomes": full.tolist(),
        "exact_agreement": _share(int(np.trace(cm)), len(pairs)),
        "qwk": round(quadratic_weighted_kappa(y, p), 4) if pairs else None,
        "qwk_ci95": [round(ci[0], 4), round(ci[1], 4)] if ci is not None else None,
        "recall": [_share(int(cm[i, i]), int(cm[i].sum())) for i in range(3)],
        "declined": len(declined),
        "declined_share": _share(len(declined), len(rows)),
        "declined_clinician_scored": sum(1 for r in declined if r.label is not None),
        "kit_scored_clinician_not_scorable": sum(1 for r in kit_scored if r.label is None),
        "review": sum(1 for r in kit_scored if r.review),
        "review_rate": _share(sum(1 for r in kit_scored if r.review), len(kit_scored)),
        "meaningful": len(pairs) >= MIN_MEANINGFUL,
    }


def report(
    rows: Sequence[LabelledTrial],
    *,
    since: date | datetime | None = None,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
) -> dict[str, Any]:
    """The agreement report: ``overall``, ``by_model_version``, ``by_side``, ``warning``."""
    overall = summarize_group(rows, n_boot=n_boot, seed=seed)
    by_model: dict[str, list[LabelledTrial]] = {}
    by_side: dict[str, list[LabelledTrial]] = {}
    for r in rows:
        by_model.setdefault(r.model_version or NO_SCORE, []).append(r)
        by_side.setdefault(r.side, []).append(r)
    warning = None
    if overall["pairs"] < MIN_MEANINGFUL:
        warning = (
            f"Only {overall['pairs']} trial(s) have both a kit score and a clinician score "
            f"({overall['n']} labelled in all): below {MIN_MEANINGFUL} these numbers are not yet "
            "meaningful. Keep labelling trials."
        )
    return {
        "format": "flexscore-agreement-v1",
        "since": since.isoformat() if since is not None else None,
        "first_trial": rows[0].started_at.isoformat() if rows else None,
        "last_trial": rows[-1].started_at.isoformat() if rows else None,
        "min_meaningful": MIN_MEANINGFUL,
        "bootstrap": {"resamples": n_boot, "seed": seed, "level": 0.95, "method": "percentile"},
        "warning": warning,
        "overall": overall,
        "by_model_version": {
            k: summarize_group(v, n_boot=n_boot, seed=seed) for k, v in sorted(by_model.items())
        },
        "by_side": {k: summarize_group(v, n_boot=n_boot, seed=seed) for k, v in sorted(by_side.items())},
    }


def store_report(
    store: Store, since: date | datetime | None = None, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED
) -> dict[str, Any]:
    """:func:`report` over the labelled trials of ``store``."""
    return report(collect(store, since), since=since, n_boot=n_boot, seed=seed)


# --------------------------------------------------------------------------- text


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v:.0%}" if pct else f"{v:.2f}"


def _group_lines(name: str, g: dict[str, Any]) -> list[str]:
    ci = g["qwk_ci95"]
    ci_text = f" (95 % CI {ci[0]:.2f} to {ci[1]:.2f})" if ci else ""
    cc, kc = g["clinician_counts"], g["kit_counts"]
    lines = [
        f"{name}: {g['n']} labelled, {g['pairs']} scored by both",
        f"  clinician 0/1/2/NS: {cc['0']}/{cc['1']}/{cc['2']}/{cc['not_scorable']}   "
        f"kit 0/1/2/NS: {kc['0']}/{kc['1']}/{kc['2']}/{kc['not_scorable']}",
        f"  exact agreement {_fmt(g['exact_agreement'], True)}, QWK {_fmt(g['qwk'])}{ci_text}",
        "  recall 0/1/2: " + " / ".join(_fmt(r, True) for r in g["recall"]),
        f"  declined (not scorable) {_fmt(g['declined_share'], True)}, "
        f"flagged for review {_fmt(g['review_rate'], True)}",
    ]
    return lines


def format_text(rep: dict[str, Any]) -> str:
    """The report as plain text (what ``flexscore validate`` prints)."""
    out = ["Site validation: kit vs clinician (mass finger flexion)"]
    if rep["since"]:
        out.append(f"trials since {rep['since']}")
    if rep["warning"]:
        out.append(f"WARNING: {rep['warning']}")
    out += _group_lines("All trials", rep["overall"])
    out.append("  confusion (rows clinician 0/1/2/NS, columns kit 0/1/2/NS; NS = not scorable):")
    for name, row in zip(("0", "1", "2", "NS"), rep["overall"]["outcomes"], strict=True):
        out.append(f"    {name:>2}: " + " ".join(f"{v:4d}" for v in row))
    for title, key in (("model version", "by_model_version"), ("affected side", "by_side")):
        for name, g in rep[key].items():
            out += _group_lines(f"By {title} {name}", g)
    out.append(
        "These figures compare the kit with this site's own clinician labels (the kit's shipped figures on "
        "synthetic and public data are not clinical accuracy)."
    )
    return "\n".join(out)
