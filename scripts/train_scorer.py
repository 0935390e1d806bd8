#!/usr/bin/env python3
"""Train the trial scorer (LSTM) and export float + full-int8 TFLite models.

Runs in the training venv (``scripts/make_train_venv.sh`` → ``.venv-train`` with
tensorflow-cpu + tf-keras; TensorFlow never goes on the device). Input: the data set from
``scripts/make_trials.py`` (``.cache/trials/dataset.npz``; that script is the one that reads
../shared/data).

For each variant (``3d``: features with z, trained on the trials that have z; ``2d``: x, y
only, trained on all trials):

1. fixed seeds; features standardised with the training split's mean / std;
2. 5-fold stratified cross-validation on the training split (accuracy, QWK per fold);
3. a final model on the whole training split (10 % kept aside for early stopping), then
   temperature scaling: its logits divided by one T fitted on the folds' out-of-fold
   predictions (calibrated probabilities, same arg-max);
4. export: float TFLite (``--float-dir``, default ``.cache/scorer``, not committed) and
   full-int8 TFLite (int8 input/output, calibrated on training samples) →
   ``models/scorer_int8.tflite`` / ``models/scorer_2d_int8.tflite``;
5. evaluation of float and int8 on every held-out set (never seen in training):
   confusion matrix, per-class recall, accuracy, quadratic weighted kappa, expected
   calibration error, float↔int8 agreement;
6. ``models/manifest.json`` entries ``scorer_int8`` / ``scorer_2d_int8`` (``"kind":
   "scorer"``: sha256, tensors, feature names, normalisation constants, metrics) updated by
   read-modify-write, other entries preserved; full report in ``<float-dir>/report.json``.

``--small`` trains a tiny configuration in a couple of minutes (CI); with ``--no-write`` it
leaves ``models/`` alone.

``--item KEY`` (default ``mass_flexion``) trains another assessment item's scorers
(:mod:`device.items`): its synthetic generator's trials, cut to the item's segment, give the
``hand`` (world landmarks) and ``2d`` (x, y only) data sets (:func:`item_dataset`); the
models and manifest entries are named by the item (``mass_extension``:
``scorer_ext_hand_int8``, ``scorer_ext_2d_int8``).

Usage::

    .venv-train/bin/python scripts/train_scorer.py [--small] [--variant both|2d|3d]
    .venv-train/bin/python scripts/train_scorer.py --item mass_extension --variant both \
        --hand-trials 300 --epochs 20 --folds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.items import DEFAULT_ITEM, AssessmentItem, get_item  # noqa: E402
from device.scoring.metrics import summarize  # noqa: E402
from device.tools.manifest import scorer_entry, tflite_signature, update_manifest  # noqa: E402
from device.tools.training import (  # noqa: E402
    export_tflite,
    fit,
    stratified_folds,
)
from device.trial.features import N_STEPS, feature_names  # noqa: E402

log = logging.getLogger("train_scorer")

MODEL_FILES = {
    "3d": ("scorer_int8", "scorer_int8.tflite", "scorer_fp32.tflite"),
    "2d": ("scorer_2d_int8", "scorer_2d_int8.tflite", "scorer_2d_fp32.tflite"),
    "hand": ("scorer_hand_int8", "scorer_hand_int8.tflite", "scorer_hand_fp32.tflite"),
}
DATA_KEYS = {"3d": "x3", "2d": "x2", "hand": "xh"}
HAND_SEEDS = (20261204, 20261205)  # training, held-out


def model_files(item: AssessmentItem, variant: str) -> tuple[str, str, str]:
    """(manifest name, int8 file, float file) of an item's scorer variant."""
    if item.key == DEFAULT_ITEM:
        return MODEL_FILES[variant]
    name, float_name = item.models.get(variant), item.float_models.get(variant)
    if not name or not float_name:
        raise SystemExit(f"train_scorer: the item '{item.key}' has no {variant} scorer model")
    return name, f"{name}.tflite", f"{float_name}.tflite"


REAL_REPEAT = 3  # each real-derived training trial counts this many times


def real_trials(folder: Path) -> list[tuple[Any, int]]:
    """(trial, score) of the tracked real-derived trials in ``folder`` (track JSON files and a
    ``labels.csv`` with file,score: ``scripts/eval_pipeline.py --trials-out``)."""
    import csv

    from device.trial.io import load_track_json

    labels = folder / "labels.csv"
    if not labels.is_file():
        raise SystemExit(f"train_scorer: {labels} not found (scripts/eval_pipeline.py --trials-out makes it)")
    with labels.open(encoding="utf-8") as f:
        rows = [(r["file"], int(r["score"])) for r in csv.DictReader(f)]
    return [(load_track_json(folder / file), score) for file, score in rows]


def hand_dataset(
    n_train: int,
    n_held: int,
    cache: Path,
    item: AssessmentItem | None = None,
    real: Path | None = None,
) -> dict[str, np.ndarray]:
    """The ``hand`` variant's data: synthetic trials with world landmarks (the generator's
    model of the real world output's bias and jitter, device/trial/synthetic.py), hand-frame
    features; ``n_train`` / ``n_held`` trials per score from two seeds. Cached in ``cache``.

    For another ``item`` than mass flexion (:func:`item_dataset`): that item's generator, each
    trial cut to the item's segment as the decision cuts it, and ``x2`` (2D features, the
    segment found on the image landmarks alone) besides ``xh``; with ``real`` (a folder of
    tracked real-derived trials, :func:`real_trials`) those join the training split
    (``REAL_REPEAT`` times each, source "real_derived")."""
    from device.scoring.reference import as_2d
    from device.trial.features import trial_features

    item = item or get_item(DEFAULT_ITEM)
    other = item.key != DEFAULT_ITEM
    if cache.is_file():
        with np.load(cache) as f:
            ds = {k: f[k] for k in f.files}
        if int(ds["n_train"]) == n_train and int(ds["n_held"]) == n_held:
            return ds
    xs, x2s, ys, split = [], [], [], []
    for n, seed, name in ((n_train, HAND_SEEDS[0], "train"), (n_held, HAND_SEEDS[1], "heldout")):
        for trial, info in item.make_trials(n, seed=seed):
            xs.append(trial_features(item.segment(trial), "hand"))
            if other:
                x2s.append(trial_features(item.segment(as_2d(trial)), "2d"))
            ys.append(info["score"])
            split.append(name)
    sources = ["synthetic"] * len(ys)
    for trial, score in real_trials(real) if real is not None else []:
        for _ in range(REAL_REPEAT):
            xs.append(trial_features(item.segment(trial), "hand"))
            if other:
                x2s.append(trial_features(item.segment(as_2d(trial)), "2d"))
            ys.append(score)
            split.append("train")
            sources.append("real_derived")
    ds = {
        **({"x2": np.stack(x2s).astype(np.float32), "item": np.array(item.key)} if other else {}),
        "xh": np.stack(xs).astype(np.float32),
        "y": np.array(ys),
        "split": np.array(split),
        "source": np.array(sources),
        "has_world": np.ones(len(ys), bool),
        "n_train": np.array(n_train),
        "n_held": np.array(n_held),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **ds)
    return ds


# --------------------------------------------------------------------------- metrics


def metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    """n, accuracy, QWK, recall, confusion and ECE of the arg-max scores
    (:func:`device.scoring.metrics.summarize`)."""
    return summarize(y, prob.argmax(axis=1), prob)


# --------------------------------------------------------------------------- model
# build_model / fit / stratified_folds / export_tflite live in device/tools/training.py
# (shared with flexscore train --from-store).


# --------------------------------------------------------------------------- calibration


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature T minimising the negative log-likelihood of softmax(logits / T) (grid
    search over 0.25–8)."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 141)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = float(-logp[np.arange(len(y)), y].mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def with_temperature(model: Any, temperature: float) -> Any:
    """The same network with its logits divided by ``temperature`` before the softmax.

    The final ``Dense(3, softmax)`` layer (named "probs") is replayed as a linear layer with
    the same weights, then scaled and soft-maxed: argmax unchanged, probabilities calibrated.
    """
    import tf_keras as keras

    probs = model.get_layer("probs")
    linear = keras.layers.Dense(3, name="logits")
    logits = linear(probs.input)
    linear.set_weights(probs.get_weights())
    scaled = keras.layers.Rescaling(1.0 / temperature, name="temperature")(logits)
    return keras.Model(model.input, keras.layers.Softmax(name="probs_calibrated")(scaled))


# --------------------------------------------------------------------------- export


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    """Probabilities [N, 3] from a TFLite file on standardised features (device runtime)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    probs = np.zeros((len(x), 3), dtype=np.float64)
    for i, row in enumerate(x):
        v = row[None].astype(np.float32)
        if inp["dtype"] == np.int8:
            s, z = inp["quantization"]
            v = np.clip(np.round(v / s + z), -128, 127).astype(np.int8)
        # The fused LSTM keeps its state in variable tensors across invokes: reset per trial.
        interp.reset_all_variables()
        interp.set_tensor(inp["index"], v)
        interp.invoke()
        o = interp.get_tensor(out["index"]).reshape(-1)
        if out["dtype"] == np.int8:
            s, z = out["quantization"]
            o = (o.astype(np.float32) - z) * s
        p = np.clip(o.astype(np.float64), 0, None)
        probs[i] = p / p.sum() if p.sum() > 0 else 1 / 3
    return probs


# --------------------------------------------------------------------------- main


def train_variant(
    variant: str,
    ds: dict[str, np.ndarray],
    cfg: dict[str, Any],
    args: argparse.Namespace,
    item: AssessmentItem | None = None,
) -> dict[str, Any]:
    item = item or get_item(DEFAULT_ITEM)
    x_all = ds[DATA_KEYS[variant]]
    usable = (
        ds["has_z"] if variant == "3d" else ds.get("has_world", np.ones(len(ds["y"]), bool))
    )
    y_all = ds["y"].astype(int)
    train = (ds["split"] == "train") & usable
    held = (ds["split"] == "heldout") & usable
    x_tr, y_tr = x_all[train], y_all[train]
    mean = x_tr.reshape(-1, x_tr.shape[2]).mean(axis=0)
    std = x_tr.reshape(-1, x_tr.shape[2]).std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)

    def norm(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).astype(np.float32)

    xn = norm(x_tr)
    log.info(
        "[%s] %d training trials, %d held-out, %d features",
        variant,
        len(y_tr),
        int(held.sum()),
        x_tr.shape[2],
    )

    cv: list[dict[str, Any]] = []
    folds = stratified_folds(y_tr, cfg["folds"], args.seed)
    oof = np.full((len(y_tr), 3), 1 / 3)  # out-of-fold probabilities, for the temperature
    for k, test_idx in enumerate(folds):
        tr_idx = np.setdiff1d(np.arange(len(y_tr)), test_idx)
        model = fit(xn[tr_idx], y_tr[tr_idx], cfg, args.seed + k, f"[{variant}] fold {k + 1}")
        prob = model.predict(xn[test_idx], verbose=0, batch_size=256)
        oof[test_idx] = prob
        m = metrics(y_tr[test_idx], prob)
        cv.append(m)
        log.info(
            "[%s] fold %d/%d: accuracy %.3f, QWK %.3f", variant, k + 1, len(folds), m["accuracy"], m["qwk"]
        )
    model = fit(xn, y_tr, cfg, args.seed, f"[{variant}] final")
    # Calibration (temperature scaling): one T fitted on the cross-validation folds'
    # out-of-fold predictions (training split only; log p are the logits up to a constant).
    temperature = fit_temperature(np.log(np.clip(oof, 1e-7, 1.0)), y_tr)
    log.info("[%s] temperature %.3f (out-of-fold fit on %d trials)", variant, temperature, len(y_tr))
    model = with_temperature(model, temperature)

    rng = np.random.default_rng(args.seed)
    calib = xn[rng.choice(len(xn), size=min(cfg["calib"], len(xn)), replace=False)]
    float_bytes, int8_bytes = export_tflite(model, x_tr.shape[2], calib)
    name, int8_file, float_file = model_files(item, variant)
    fdir = Path(args.float_dir)
    fdir.mkdir(parents=True, exist_ok=True)
    (fdir / float_file).write_bytes(float_bytes)
    int8_path = (Path(args.models_dir) if not args.no_write else fdir) / int8_file
    int8_path.write_bytes(int8_bytes)
    log.info(
        "[%s] exported float %d B, int8 %d B → %s", variant, len(float_bytes), len(int8_bytes), int8_path
    )

    results: dict[str, Any] = {}
    agree_all: list[np.ndarray] = []
    sources = ds["source"][held]
    for src in sorted(set(sources.tolist())):
        m_src = sources == src
        xs, ys = norm(x_all[held][m_src]), y_all[held][m_src]
        p_float = run_tflite(fdir / float_file, xs)
        p_int8 = run_tflite(int8_path, xs)
        agree = p_float.argmax(1) == p_int8.argmax(1)
        agree_all.append(agree)
        results[src] = {
            "float": metrics(ys, p_float),
            "int8": metrics(ys, p_int8),
            "int8_float_agreement": round(float(agree.mean()), 4),
        }
        log.info(
            "[%s] held-out %-15s n=%4d float acc %.3f | int8 acc %.3f QWK %.3f ECE %.3f | agree %.3f",
            variant,
            src,
            len(ys),
            results[src]["float"]["accuracy"],
            results[src]["int8"]["accuracy"],
            results[src]["int8"]["qwk"],
            results[src]["int8"]["ece"],
            agree.mean(),
        )
    real = [s for s in results if s != "synthetic"]
    if real:
        m_real = np.isin(sources, real)
        xs, ys = norm(x_all[held][m_real]), y_all[held][m_real]
        p_int8 = run_tflite(int8_path, xs)
        p_float = run_tflite(fdir / float_file, xs)
        results["real_derived_all"] = {
            "float": metrics(ys, p_float),
            "int8": metrics(ys, p_int8),
            "int8_float_agreement": round(float((p_float.argmax(1) == p_int8.argmax(1)).mean()), 4),
        }
    cv_acc = np.array([c["accuracy"] for c in cv])
    cv_qwk = np.array([c["qwk"] for c in cv])
    summary = {
        "variant": variant,
        "cv": {
            "folds": cv,
            "accuracy_mean": round(float(cv_acc.mean()), 4),
            "accuracy_sd": round(float(cv_acc.std()), 4),
            "qwk_mean": round(float(cv_qwk.mean()), 4),
        },
        "heldout": results,
        "int8_float_agreement": round(float(np.concatenate(agree_all).mean()), 4) if agree_all else None,
        "train_trials": len(y_tr),
        "temperature": round(temperature, 4),
    }
    if not args.no_write:
        entry = scorer_entry(
            file=int8_file,
            variant=variant,
            data=int8_bytes,
            recipe=(
                f"scripts/train_scorer.py: tf_keras LSTM({cfg['units']}) → Dense(16) → "
                f"softmax(3 logits / T={temperature:.3f}, temperature fitted on the CV folds' "
                f"out-of-fold predictions) on {x_tr.shape[2]} standardised features × "
                f"{N_STEPS} steps; "
                "full-int8 (int8 input/output) TFLite calibrated on "
                f"{len(calib)} training trials; data from scripts/make_trials.py "
                + (
                    f"(item {item.key}: its synthetic trials cut to the item's segment, "
                    "train_scorer.hand_dataset; see docs/VALIDATION.md)"
                    if item.key != DEFAULT_ITEM
                    else "(synthetic kinematic + real-derived; see docs/VALIDATION.md)"
                    if variant != "hand"
                    else "synthetic kinematic trials with world landmarks, hand-frame features "
                    "(train_scorer.hand_dataset; see docs/VALIDATION.md)"
                )
            ),
            item=item.key if item.key != DEFAULT_ITEM else None,
            signature=tflite_signature(int8_path),
            features=feature_names(variant),  # type: ignore[arg-type]
            steps=N_STEPS,
            mean=mean,
            std=std,
            metrics={
                "cv_accuracy_mean": summary["cv"]["accuracy_mean"],
                "cv_accuracy_sd": summary["cv"]["accuracy_sd"],
                "heldout": {
                    k: {
                        "accuracy": v["int8"]["accuracy"],
                        "qwk": v["int8"]["qwk"],
                        "ece": v["int8"]["ece"],
                        "n": v["int8"]["n"],
                        "int8_float_agreement": v["int8_float_agreement"],
                    }
                    for k, v in results.items()
                },
            },
            training={
                "seed": args.seed,
                "small": args.small,
                "temperature": round(temperature, 4),
                **cfg,
            },
        )
        update_manifest(Path(args.models_dir), {name: entry})
        log.info("[%s] manifest entry %s updated (sha256 %s…)", variant, name, entry["sha256"][:12])
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(REPO / ".cache" / "trials" / "dataset.npz"))
    p.add_argument("--variant", choices=["both", "2d", "3d", "hand"], default="both")
    p.add_argument(
        "--item",
        default=DEFAULT_ITEM,
        help="the assessment item whose scorers to train (device.items; default %(default)s); "
        "another item than mass_flexion trains its 'hand' and '2d' variants on its synthetic trials",
    )
    p.add_argument("--hand-trials", type=int, default=1000, help="hand variant: training trials per score")
    p.add_argument(
        "--real",
        metavar="DIR",
        help="another item than mass_flexion: tracked real-derived training trials (track JSON + "
        "labels.csv, from scripts/eval_pipeline.py --trials-out)",
    )
    p.add_argument("--models-dir", default=str(REPO / "models"))
    p.add_argument("--float-dir", default=str(REPO / ".cache" / "scorer"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--small", action="store_true", help="tiny configuration for CI")
    p.add_argument("--no-write", action="store_true", help="leave models/ untouched")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        import tensorflow  # noqa: F401
        import tf_keras  # noqa: F401
    except ImportError:
        raise SystemExit(
            "train_scorer: tensorflow / tf_keras are not importable here. Make the training "
            "venv with scripts/make_train_venv.sh and run .venv-train/bin/python "
            "scripts/train_scorer.py"
        ) from None
    data = Path(args.data)
    try:
        item = get_item(args.item)
    except KeyError as exc:
        raise SystemExit(f"train_scorer: {exc}") from None
    other = item.key != DEFAULT_ITEM
    if other and args.variant == "3d":
        raise SystemExit(f"train_scorer: the item '{item.key}' trains 'hand' and '2d' scorers, not '3d'")
    if args.variant == "hand" or other:
        n_train = 40 if args.small else args.hand_trials
        # keyed by the code that makes the trials and their features: a change re-generates
        sources = ["trial/synthetic.py", "trial/features.py", "trial/calibration.py", "trial/kinematics.py"]
        if other:
            sources += [f"items/{item.key.removeprefix('mass_')}.py", "scoring/extension.py",
                        "trial/synthetic_extension.py", "scoring/rules.py"]  # fmt: skip
        code = hashlib.sha256(
            b"".join((REPO / "device" / f).read_bytes() for f in sources if (REPO / "device" / f).is_file())
        )
        real = Path(args.real) if args.real else None
        if real is not None:
            code.update((real / "labels.csv").read_bytes() if (real / "labels.csv").is_file() else b"?")
        prefix = "hand_dataset" if not other else f"{item.key}_dataset"
        cache = Path(args.float_dir) / f"{prefix}_{n_train}_{code.hexdigest()[:12]}.npz"
        ds = hand_dataset(n_train, max(10, n_train // 6), cache, item, real)
    elif not data.is_file():
        raise SystemExit(f"train_scorer: {data} not found: run scripts/make_trials.py first")
    else:
        with np.load(data) as f:
            ds = {k: f[k] for k in f.files}
    cfg = {
        "units": 16 if args.small else 32,
        "dropout": 0.2,
        "epochs": args.epochs or (3 if args.small else 40),
        "batch": 64,
        "patience": 2 if args.small else 6,
        "folds": 2 if args.small else args.folds,
        "calib": 64 if args.small else 400,
    }
    t0 = time.perf_counter()
    both = ["hand", "2d"] if other else ["3d", "2d"]
    variants = both if args.variant == "both" else [args.variant]
    report = {v: train_variant(v, ds, cfg, args, item) for v in variants}
    report["config"] = cfg
    report["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.float_dir) / "report.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {
                v: {
                    "cv_acc": report[v]["cv"]["accuracy_mean"],
                    "heldout": {k: r["int8"]["accuracy"] for k, r in report[v]["heldout"].items()},
                    "agreement": report[v]["int8_float_agreement"],
                }
                for v in variants
            },
            indent=2,
        )
    )
    print(f"report: {out} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
