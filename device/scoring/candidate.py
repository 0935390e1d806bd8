"""Candidate scorers: their held-out comparison with the current model and the install gate.

A *candidate* is a directory written by ``flexscore train --from-store`` (see
:mod:`device.tools.training`)::

    CANDIDATE/manifest.json       {"version": 1, "models": {"scorer_int8": {... "sha256", "version" ...}}}
    CANDIDATE/scorer_int8.tflite  the full-int8 model (or scorer_2d_int8.tflite)
    CANDIDATE/report.json         candidate vs current on the same held-out labelled trials

The gate (:func:`gate`) is what ``flexscore models install`` enforces. A candidate passes only if

* the held-out set has at least :data:`MIN_HELDOUT` trials and :data:`MIN_PER_CLASS` of each
  clinician score 0, 1 and 2 — a site whose labels never use a score cannot show that the
  candidate still recognises it (a systematically shifted site, e.g. one that never gives 2,
  is refused here);
* its quadratic weighted kappa on the held-out trials is not below the current model's
  (tolerance :data:`KAPPA_TOL`), and no per-class recall drops by more than :data:`RECALL_TOL`;
* on the kinematic reference set (seeded synthetic trials whose score follows from the
  movement itself, :func:`reference_set`) its kappa is not more than :data:`REFERENCE_TOL`
  below the current model's: labels that drifted from the item's definition are caught even
  when every score still occurs.

Everything here runs on the device (no TensorFlow): predictions come from the int8 model in
the same runtime that scores patients.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import InputError, ModelError
from device.scoring.metrics import summarize
from device.scoring.rnn import RNNScorer, model_version
from device.trial.features import Variant, trial_features
from device.trial.synthetic import make_trials
from device.trial.types import Trial
from device.vision.runtime import load_manifest, sha256_file

log = logging.getLogger(__name__)

CANDIDATE_FORMAT = "flexscore-candidate-v1"
REPORT_NAME = "report.json"
MIN_HELDOUT = 20
MIN_PER_CLASS = 3
KAPPA_TOL = 0.0
RECALL_TOL = 0.05
REFERENCE_TOL = 0.10
REFERENCE_PER_CLASS = 15
REFERENCE_SEED = 424242
SCORER_NAMES: dict[str, str] = {"3d": "scorer_int8", "2d": "scorer_2d_int8", "hand": "scorer_hand_int8"}


def device_variant(cfg: Any) -> Variant:
    """The scorer variant the appliance's own trials use with ``cfg``: "hand" while
    ``scoring.use_world`` is on (its tracker gives world landmarks), else "3d" unless
    ``scoring.use_z`` is off (then every trial is scored from x, y by the 2D scorer)."""
    if getattr(cfg.scoring, "use_world", False):
        return "hand"
    return "3d" if getattr(cfg.scoring, "use_z", True) else "2d"


__all__ = [
    "Candidate",
    "compare",
    "device_variant",
    "gate",
    "load_candidate",
    "model_version",
    "predict",
    "reference_set",
]


def predict(scorer: RNNScorer, features: np.ndarray) -> np.ndarray:
    """Arg-max score of the scorer for each feature matrix [N, steps, F]."""
    return np.array([int(np.argmax(scorer.probabilities(f))) for f in features], dtype=np.int64)


def features_of(trials: Sequence[Trial], variant: Variant) -> np.ndarray:
    return np.stack([trial_features(t, variant) for t in trials]) if trials else np.zeros((0, 200, 0))


@functools.lru_cache(maxsize=4)
def reference_set(variant: Variant, per_class: int = REFERENCE_PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """(features [N, 200, F], scores) of the seeded kinematic reference trials (made once
    per process; read-only arrays)."""
    made = make_trials(per_class, seed=REFERENCE_SEED, with_z=variant == "3d")
    feats = features_of([t for t, _ in made], variant)
    scores = np.array([int(info["score"]) for _, info in made], dtype=np.int64)
    feats.flags.writeable = False
    scores.flags.writeable = False
    return feats, scores


def compare(
    candidate: RNNScorer, current: RNNScorer, features: np.ndarray, labels: np.ndarray
) -> dict[str, Any]:
    """Both models on the same trials: ``{"candidate": summary, "current": summary}``
    (:func:`device.scoring.metrics.summarize`)."""
    return {
        "candidate": summarize(labels, predict(candidate, features)),
        "current": summarize(labels, predict(current, features)),
    }


def gate(heldout: dict[str, Any], reference: dict[str, Any] | None) -> list[str]:
    """Why a candidate must not be installed (empty: it may).

    ``heldout``: ``{"labels": [...], "candidate": summary, "current": summary}``;
    ``reference``: ``{"candidate": summary, "current": summary}`` on the reference set.
    """
    problems: list[str] = []
    labels = np.asarray(heldout.get("labels", []), dtype=np.int64)
    if len(labels) < MIN_HELDOUT:
        problems.append(
            f"only {len(labels)} held-out labelled trials (need {MIN_HELDOUT}): label more trials"
        )
    for k in (0, 1, 2):
        n_k = int((labels == k).sum())
        if n_k < MIN_PER_CLASS:
            problems.append(
                f"the held-out labels contain {n_k} trial(s) scored {k} (need {MIN_PER_CLASS}): "
                f"a site whose labels (almost) never give {k} cannot show that the candidate still "
                "recognises it — check the labelling before re-training"
            )
    cand, cur = heldout["candidate"], heldout["current"]
    if cand["qwk"] < cur["qwk"] - KAPPA_TOL:
        problems.append(f"held-out kappa {cand['qwk']:.3f} is below the current model's {cur['qwk']:.3f}")
    for k in range(3):
        rc, ru = cand["recall"][k], cur["recall"][k]
        if rc is not None and ru is not None and rc < ru - RECALL_TOL:
            problems.append(f"held-out recall of score {k} drops from {ru:.0%} to {rc:.0%}")
    if reference is not None:
        rc_q, ru_q = reference["candidate"]["qwk"], reference["current"]["qwk"]
        if rc_q < ru_q - REFERENCE_TOL:
            problems.append(
                f"on the kinematic reference trials the candidate's kappa is {rc_q:.3f} vs "
                f"{ru_q:.3f} for the current model: the site labels seem shifted from the item's "
                "definition (e.g. full flexion scored 1) — review the labelling with the clinical lead"
            )
    return problems


@dataclass(frozen=True)
class Candidate:
    """A candidate directory, checked: one scorer entry whose file matches its sha256, and a
    report."""

    path: Path
    name: str
    entry: dict[str, Any]
    report: dict[str, Any]

    @property
    def variant(self) -> Variant:
        variant = self.entry.get("variant")
        return variant if variant in ("2d", "hand") else "3d"

    @property
    def version(self) -> str:
        return model_version(self.name, self.entry)

    @property
    def file(self) -> Path:
        return self.path / str(self.entry["file"])


def load_candidate(path: str | Path) -> Candidate:
    """Read and verify a candidate directory; a clear :class:`ModelError` if anything is off."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"candidate {path} is not a directory (flexscore train --from-store --out DIR)")
    models = load_manifest(path)["models"]
    scorers = {k: v for k, v in models.items() if isinstance(v, dict) and v.get("kind") == "scorer"}
    if len(scorers) != 1:
        raise ModelError(
            f"candidate {path} must hold exactly one scorer in manifest.json, found {len(scorers)}"
        )
    ((name, entry),) = scorers.items()
    if name not in SCORER_NAMES.values():
        raise ModelError(f"candidate scorer '{name}' is not one of {', '.join(SCORER_NAMES.values())}")
    file = path / str(entry.get("file", ""))
    if not entry.get("file") or not file.is_file():
        raise ModelError(f"candidate model file {file} is missing")
    digest = sha256_file(file)
    if digest != entry.get("sha256"):
        raise ModelError(
            f"candidate model {file} does not match its manifest (sha256 {digest[:12]}…, expected "
            f"{str(entry.get('sha256'))[:12]}…): copy the whole candidate directory again"
        )
    rpath = path / REPORT_NAME
    if not rpath.is_file():
        raise ModelError(f"candidate {path} has no {REPORT_NAME}: a model without its report is refused")
    try:
        report = json.loads(rpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"candidate report {rpath} is unreadable: {exc}") from None
    if report.get("format") != CANDIDATE_FORMAT:
        raise ModelError(f"candidate report {rpath} is not a {CANDIDATE_FORMAT} report")
    if report.get("candidate", {}).get("sha256") != digest:
        raise ModelError(f"candidate report {rpath} describes another model file than {file.name}")
    return Candidate(path, name, dict(entry), report)
