"""A trial store filled with clinician-labelled trials, for the site-validation tests.

Trials come from the kinematic generator (ground truth known) and, optionally, from real
hand poses (tests/data/kazuhito_poses_sample.csv, 2D). Each is scored by the shipped models
and stored like the appliance stores it (landmarks, score with its model version); the
clinician label is the generator's score passed through ``label_of`` (a site's habits).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from trial_helpers import kazuhito_trial as shared_kazuhito_trial

from device.config import Config
from device.scoring.candidate import CANDIDATE_FORMAT, SCORER_NAMES, compare, device_variant
from device.scoring.decide import Decider
from device.scoring.rnn import RNNScorer, model_version
from device.store import NewScore, Store
from device.trial.features import trial_features
from device.trial.synthetic import make_trial
from device.trial.types import Trial
from device.vision.runtime import load_manifest, sha256_file

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
DATA = Path(__file__).resolve().parent / "data"
# The scorer the appliance uses with the default config (the hand-frame one: scoring.use_world).
VARIANT = device_variant(Config())
SCORER = SCORER_NAMES[VARIANT]


@dataclass(frozen=True)
class Stored:
    trial_id: int
    truth: int
    kit: int | None
    label: int | None
    side: str
    version: str | None
    review: bool
    has_z: bool


def kazuhito_trial(alpha: float, seed: int) -> Trial:
    return shared_kazuhito_trial(alpha, seed, side="right")


def fill_store(
    path: Path,
    *,
    per_class: int,
    seed: int = 0,
    label_of: Callable[[int, int], int | None] = lambda truth, i: truth,
    real: bool = True,
) -> list[Stored]:
    """Store ``per_class`` generator trials per score (+ 3 real-derived ones), each scored
    and labelled; returns what was stored."""
    rng = np.random.default_rng(seed)
    trials: list[tuple[Trial, int]] = []
    for _ in range(per_class):
        for s in (0, 1, 2):
            tr, _ = make_trial(s, rng)
            trials.append((tr, s))
    if real:
        trials += [(kazuhito_trial(a, k), s) for k, (a, s) in enumerate([(0.0, 0), (0.4, 1), (1.0, 2)])]
    decider = Decider(Config(), models_dir=MODELS)
    out: list[Stored] = []
    with Store(path) as st:
        for i, (tr, truth) in enumerate(trials):
            res = decider.score(tr)
            pid = None  # three trials (one per score) per patient; every tenth trial without one
            if i % 10 != 9:
                code = f"P{i // 3:03d}"
                found = st.find_patient(code)
                pid = found.id if found else st.add_patient(code, tr.side)
            tid = st.begin_trial(side=tr.side, patient_id=pid, origin="test")
            version = None
            if res.status == "scored" and res.score is not None:
                version = res.details["rnn"]["version"]
                score = NewScore(
                    final_score=res.score,
                    model_score=res.score,
                    rule_score=res.rule_score,
                    probabilities=res.probabilities,
                    confidence=res.confidence,
                    model_version=version,
                    rule_version="rom-rule-1",
                    review=res.review,
                )
                st.finish_trial(tid, "scored", trial=tr, quality=res.quality, score=score)
            else:
                st.finish_trial(tid, "rejected", trial=tr, quality=res.quality)
            label = label_of(truth, i)
            st.add_label(tid, "dr_test", label)
            out.append(
                Stored(tid, truth, res.score if res.status == "scored" else None, label,
                       tr.side or "unknown", version, bool(res.review), tr.has_z)
            )  # fmt: skip
    decider.close()
    return out


def make_candidate(
    out: Path,
    store_path: Path,
    heldout_ids: list[int],
    *,
    version: str,
    norm_shift: float = 0.0,
    current_dir: Path = MODELS,
) -> Path:
    """A candidate directory without TensorFlow: the shipped scorer the appliance uses
    (:data:`SCORER`) under a new version, its normalisation shifted by ``norm_shift`` standard
    deviations (0: as good as the current model; large: clearly worse), with a report
    computed like the trainer's."""
    name = SCORER
    out.mkdir(parents=True, exist_ok=True)
    entry = dict(load_manifest(MODELS)["models"][name])
    (out / entry["file"]).write_bytes((MODELS / entry["file"]).read_bytes())
    norm = entry["normalization"]
    entry["normalization"] = {
        "mean": [m + norm_shift * s for m, s in zip(norm["mean"], norm["std"], strict=True)],
        "std": norm["std"],
    }
    entry["version"] = version
    entry.pop("metrics", None)
    (out / "manifest.json").write_text(json.dumps({"version": 1, "models": {name: entry}}), encoding="utf-8")
    with Store(store_path) as st:
        labels = [st.labels_for(t)[-1].score for t in heldout_ids]
        x = np.stack([trial_features(st.load_trial(t), VARIANT) for t in heldout_ids])
    y = np.array(labels, dtype=np.int64)
    cand, cur = RNNScorer(out, name), RNNScorer(current_dir, name)
    cur_entry = load_manifest(current_dir)["models"][name]
    held = {"n": len(y), "trial_ids": heldout_ids, "labels": y.tolist(), **compare(cand, cur, x, y)}
    cand.close()
    cur.close()
    report: dict[str, Any] = {
        "format": CANDIDATE_FORMAT,
        "name": name,
        "variant": VARIANT,
        "candidate": {"version": version, "sha256": sha256_file(out / entry["file"]), "file": entry["file"]},
        "current": {"version": model_version(name, cur_entry), "sha256": cur_entry["sha256"]},
        "heldout": held,
    }
    (out / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return out
