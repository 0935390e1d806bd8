"""Training the scorer: the Keras model, fitting, int8 export — and re-training from a store.

Shared by ``scripts/train_scorer.py`` (the shipped scorer, trained on the data set of
``scripts/make_trials.py``) and ``flexscore train --from-store`` (a site's candidate, trained
on its clinician-labelled trials). TensorFlow / tf_keras are imported lazily, only by the
functions that need them: they live in the ``train`` extra (a workstation), never on the Pi.

:func:`train_from_store`:

1. reads the labelled trials of a store (newest clinician label 0/1/2, stored landmarks; the
   ``3d`` scorer needs trials with z) and computes their features (:mod:`device.trial.features`);
2. holds out a stratified share per score (seeded), whole patients on one side;
3. fine-tunes the current scorer — its int8 weights dequantised into the same Keras
   architecture (:func:`keras_from_tflite`), its normalisation kept — or trains fresh;
4. exports full int8 (int8 input/output, calibrated on training trials);
5. writes the candidate directory (:mod:`device.scoring.candidate`): model, manifest entry
   with sha256, and ``report.json`` comparing candidate and current model on the same
   held-out trials and on the kinematic reference set, with the install gate's verdict.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import FlexscoreError, InputError, ModelError, StoreError
from device.trial.features import N_STEPS, Variant, feature_names, trial_features

log = logging.getLogger(__name__)

DEFAULT_CONFIG: dict[str, Any] = {"units": 32, "dropout": 0.2, "epochs": 40, "batch": 64, "patience": 6}
MIN_TRIALS = 10  # labelled trials below which training is refused outright
MIN_INIT_AGREEMENT = 0.9  # dequantised Keras vs int8 arg-max agreement needed to fine-tune
SMALL_CONFIG: dict[str, Any] = {"units": 16, "dropout": 0.2, "epochs": 3, "batch": 64, "patience": 2}


def require_tf() -> Any:
    """Import TensorFlow (legacy Keras, deterministic ops) or say how to get it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    try:
        import tensorflow as tf
        import tf_keras  # noqa: F401
    except ImportError:
        raise FlexscoreError(
            "training needs TensorFlow and tf_keras, which are not installed here: on a "
            "workstation run pip install 'flexscore[train]' (or scripts/make_train_venv.sh); "
            "never on the Pi"
        ) from None
    return tf


# --------------------------------------------------------------------------- model


def set_seeds(seed: int) -> None:
    tf = require_tf()
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    with contextlib.suppress(AttributeError):
        tf.config.experimental.enable_op_determinism()


def build_model(n_features: int, units: int, dropout: float, lr: float = 3e-3) -> Any:
    """LSTM(units) → Dropout → Dense(16, relu) → Dense(3, softmax) on [200, F] features."""
    require_tf()
    import tf_keras as keras

    inp = keras.Input(shape=(N_STEPS, n_features), name="features")
    x = keras.layers.LSTM(units, name="lstm")(inp)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model(inp, out)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def fit(
    x: np.ndarray,
    y: np.ndarray,
    cfg: dict[str, Any],
    seed: int,
    desc: str,
    model: Any = None,
    verbose: int = 2,
) -> Any:
    """Train ``model`` (default: a new one) on standardised features; 10 % (at least 3
    trials) kept aside for early stopping."""
    require_tf()
    import tf_keras as keras

    set_seeds(seed)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_val = max(3, len(y) // 10)
    val, tr = idx[:n_val], idx[n_val:]
    if model is None:
        model = build_model(x.shape[2], cfg["units"], cfg["dropout"])
    cb = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=cfg["patience"], restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3),
    ]
    t0 = time.perf_counter()
    hist = model.fit(
        x[tr],
        y[tr],
        validation_data=(x[val], y[val]),
        epochs=cfg["epochs"],
        batch_size=cfg["batch"],
        verbose=verbose,
        callbacks=cb,
        shuffle=True,
    )
    log.info(
        "%s: %d epochs in %.0f s, best val_loss %.4f",
        desc,
        len(hist.history["loss"]),
        time.perf_counter() - t0,
        min(hist.history["val_loss"]),
    )
    return model


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        for i, j in enumerate(idx):
            folds[i % k].append(int(j))
    return [np.array(sorted(f), dtype=np.int64) for f in folds]


def grouped_stratified_split(
    y: np.ndarray, groups: np.ndarray, heldout: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices) with whole groups (patients) on one side.

    Groups are taken in a seeded random order; a group joins the held-out side when some
    score it has is still short of ``round(heldout × n_k)`` and no score would overshoot its
    target by more than a third (at least one trial). With one trial per group this is the
    plain stratified split. Every score keeps at least one training trial when it has two."""
    rng = np.random.default_rng(seed)
    total = {int(k): int((y == k).sum()) for k in np.unique(y)}
    target = {k: round(heldout * n) for k, n in total.items()}
    tol = {k: max(1, t // 3) for k, t in target.items()}
    held_n = dict.fromkeys(target, 0)
    held: list[int] = []
    uniq = np.unique(groups)
    for g in uniq[rng.permutation(len(uniq))]:
        idx = np.flatnonzero(groups == g)
        counts = {k: int((y[idx] == k).sum()) for k in target}
        helps = any(counts[k] and held_n[k] < target[k] for k in target)
        fits = all(held_n[k] + counts[k] <= target[k] + (tol[k] if counts[k] else 0) for k in target)
        keeps = all(total[k] - held_n[k] - counts[k] >= min(1, total[k] - 1) for k in target)
        if helps and fits and keeps:
            held += idx.tolist()
            for k in target:
                held_n[k] += counts[k]
        if all(held_n[k] >= target[k] for k in target):
            break
    held_arr = np.array(sorted(held), dtype=np.int64)
    return np.setdiff1d(np.arange(len(y)), held_arr), held_arr


# --------------------------------------------------------------------------- export


def export_tflite(model: Any, n_features: int, calib: np.ndarray) -> tuple[bytes, bytes]:
    """(float TFLite, full-int8 TFLite) with a fixed [1, 200, F] input."""
    tf = require_tf()
    spec = tf.TensorSpec([1, N_STEPS, n_features], tf.float32, name="features")
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    concrete = fn.get_concrete_function()

    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    float_bytes = conv.convert()

    def representative() -> Iterator[list[np.ndarray]]:
        for row in calib:
            yield [row[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    int8_bytes = conv.convert()
    return float_bytes, int8_bytes


def keras_from_tflite(path: Path, n_features: int, dropout: float = 0.2, lr: float = 1e-3) -> Any:
    """A Keras model with the dequantised weights of an int8 scorer written by
    :func:`export_tflite` (fused UNIDIRECTIONAL_SEQUENCE_LSTM, then two FULLY_CONNECTED).

    The TFLite LSTM keeps one [units, F] input and one [units, units] recurrent matrix per
    gate (input, forget, cell, output: op inputs 1-4 and 5-8) and one bias per gate (12-15);
    Keras stacks them as kernel [F, 4·units], recurrent kernel and bias in the same gate order.
    """
    from device.vision.runtime import interpreter_class

    cls, _ = interpreter_class()
    interp = cls(model_path=str(path))  # constant tensors stay readable after allocation
    interp.allocate_tensors()
    details = {int(d["index"]): d for d in interp.get_tensor_details()}

    def deq(idx: int) -> np.ndarray:
        d = details[int(idx)]
        q = np.asarray(interp.get_tensor(int(idx)), dtype=np.float64)
        qp = d["quantization_parameters"]
        scales, zps = np.asarray(qp["scales"]), np.asarray(qp["zero_points"])
        if scales.size == 0:
            return q
        if scales.size == 1:
            return (q - zps[0]) * scales[0]
        shape = [1] * q.ndim
        shape[int(qp["quantized_dimension"])] = -1
        return (q - zps.reshape(shape)) * scales.reshape(shape)

    ops = interp._get_ops_details()  # the only way to read the op graph from the runtime
    lstm = [o for o in ops if o["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    fcs = [o for o in ops if o["op_name"] == "FULLY_CONNECTED"]
    if len(lstm) != 1 or len(fcs) != 2:
        raise ModelError(f"{path} is not a scorer exported by export_tflite (LSTM → Dense → Dense)")
    ins = [int(i) for i in lstm[0]["inputs"]]
    w_in = [deq(ins[k]) for k in (1, 2, 3, 4)]
    w_rec = [deq(ins[k]) for k in (5, 6, 7, 8)]
    bias = [deq(ins[k]) for k in (12, 13, 14, 15)]
    units = w_in[0].shape[0]
    if w_in[0].shape[1] != n_features:
        raise ModelError(f"{path} takes {w_in[0].shape[1]} features, not {n_features}")
    model = build_model(n_features, units, dropout, lr)
    model.get_layer("lstm").set_weights(
        [
            np.concatenate([w.T for w in w_in], axis=1),
            np.concatenate([w.T for w in w_rec], axis=1),
            np.concatenate(bias),
        ]
    )
    for layer, op in zip(("hidden", "probs"), fcs, strict=True):
        w_idx, b_idx = int(op["inputs"][1]), int(op["inputs"][2])
        model.get_layer(layer).set_weights([deq(w_idx).T, deq(b_idx)])
    return model


# --------------------------------------------------------------------------- store


@dataclass(frozen=True)
class LabelledSet:
    """Features [N, 200, F], clinician scores [N] and trial ids of a store's labelled trials."""

    x: np.ndarray
    y: np.ndarray
    trial_ids: np.ndarray
    groups: np.ndarray  # patient id, or -trial id for a trial without a patient
    skipped: int  # labelled 0/1/2 but unusable (no landmarks, no z for 3d, no tracked frame)
    not_scorable: int  # labelled "not scorable" by the clinician (not used for training)


def labelled_dataset(store: Any, variant: Variant) -> LabelledSet:
    """The store's trials whose newest clinician label is 0/1/2, with their features."""
    feats: list[np.ndarray] = []
    ys: list[int] = []
    ids: list[int] = []
    grp: list[int] = []
    skipped = not_scorable = 0
    offset, page_size = 0, 500
    while True:
        page = store.list_trials(limit=page_size, offset=offset)
        for tr in page:
            labels = store.labels_for(tr.id)
            if not labels:
                continue
            score = labels[-1].score
            if score is None:
                not_scorable += 1
                continue
            if not tr.has_landmarks:
                skipped += 1
                continue
            try:
                trial = store.load_trial(tr.id)
                feats.append(trial_features(trial, variant))
            except (InputError, StoreError) as exc:
                log.debug("trial %d skipped: %s", tr.id, exc)
                skipped += 1
                continue
            ys.append(int(score))
            ids.append(int(tr.id))
            grp.append(int(tr.patient_id) if tr.patient_id is not None else -int(tr.id))
        if len(page) < page_size:
            break
        offset += page_size
    n_f = len(feature_names(variant))
    x = np.stack(feats).astype(np.float32) if feats else np.zeros((0, N_STEPS, n_f), np.float32)
    order = np.argsort(np.array(ids, dtype=np.int64), kind="stable")
    return LabelledSet(
        x[order],
        np.array(ys, dtype=np.int64)[order],
        np.array(ids, dtype=np.int64)[order],
        np.array(grp, dtype=np.int64)[order],
        skipped,
        not_scorable,
    )


def _init_agreement(
    model: Any, current_dir: Path, name: str, x: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> float:
    """Arg-max agreement of the dequantised Keras model with the int8 model it came from
    (up to 64 training trials): the fine-tuning really starts from the current scorer."""
    from device.scoring.rnn import RNNScorer

    sample = x[:64]
    keras_p = model.predict(((sample - mean) / std).astype(np.float32), verbose=0, batch_size=64)
    scorer = RNNScorer(current_dir, name)
    try:
        int8_p = np.stack([scorer.probabilities(f) for f in sample])
    finally:
        scorer.close()
    return round(float((keras_p.argmax(axis=1) == int8_p.argmax(axis=1)).mean()), 4)


def _counts(y: np.ndarray) -> dict[str, int]:
    return {str(k): int((y == k).sum()) for k in (0, 1, 2)}


def train_from_store(
    store_path: Path,
    out_dir: Path,
    *,
    variant: Variant = "3d",
    init: str = "current",
    current_dir: Path,
    heldout: float = 0.3,
    seed: int = 1234,
    small: bool = False,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Train a candidate from a store's labelled trials and write it to ``out_dir`` (see the
    module doc); returns the report (also written as ``out_dir/report.json``)."""
    from device.scoring.candidate import (
        CANDIDATE_FORMAT,
        REFERENCE_PER_CLASS,
        REFERENCE_SEED,
        REPORT_NAME,
        SCORER_NAMES,
        compare,
        gate,
        reference_set,
    )
    from device.scoring.rnn import RNNScorer, model_version
    from device.store import Store
    from device.tools.manifest import scorer_entry, tflite_signature, update_manifest
    from device.vision.runtime import load_manifest

    require_tf()
    if init not in ("current", "fresh"):
        raise InputError(f"--init must be 'current' or 'fresh', got {init!r}")
    if not Path(store_path).is_file():
        raise InputError(f"no trial store at {store_path}")
    name = SCORER_NAMES[variant]
    cur_entry = load_manifest(current_dir)["models"].get(name)
    if cur_entry is None:
        raise ModelError(f"no current scorer '{name}' in {current_dir}")
    with Store(store_path) as st:
        data = labelled_dataset(st, variant)
    counts = _counts(data.y)
    log.info("%d labelled trials usable (%s), %d skipped", len(data.y), counts, data.skipped)
    if len(data.y) < MIN_TRIALS or sum(v >= 2 for v in counts.values()) < 2:
        raise InputError(
            f"the store has too few usable labelled trials to train and hold out ({counts}, "
            f"{data.skipped} unusable): at least {MIN_TRIALS}, two scores with 2 or more each "
            "(and many more for a useful model)"
        )
    if min(counts.values()) == 0:
        log.warning(
            "the labels never use some score (%s): the install gate will refuse this candidate", counts
        )
    # whole patients on one side, so the held-out figures are about patients not trained on
    tr_idx, held_idx = grouped_stratified_split(data.y, data.groups, heldout, seed)
    if len(held_idx) == 0 or len(tr_idx) == 0:
        raise InputError("cannot hold out whole patients with these labels: label trials of more patients")
    x_tr, y_tr = data.x[tr_idx], data.y[tr_idx]
    cfg = dict(SMALL_CONFIG if small else DEFAULT_CONFIG)
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    n_f = data.x.shape[2]
    if init == "current":
        norm = cur_entry.get("normalization") or {}
        mean = np.asarray(norm["mean"], dtype=np.float32)
        std = np.where(np.asarray(norm["std"]) > 1e-6, np.asarray(norm["std"]), 1.0).astype(np.float32)
        model = keras_from_tflite(current_dir / cur_entry["file"], n_f, cfg["dropout"], lr=1e-3)
        cfg["units"] = int(model.get_layer("lstm").units)
        cfg["init_agreement"] = _init_agreement(model, current_dir, name, x_tr, mean, std)
        if cfg["init_agreement"] < MIN_INIT_AGREEMENT:
            raise ModelError(
                f"the current scorer's weights could not be reproduced in Keras (arg-max agreement "
                f"{cfg['init_agreement']:.0%} with the int8 model): train with --init fresh"
            )
    else:
        flat = x_tr.reshape(-1, n_f)
        mean = flat.mean(axis=0).astype(np.float32)
        std = np.where(flat.std(axis=0) > 1e-6, flat.std(axis=0), 1.0).astype(np.float32)
        model = None
    xn = ((x_tr - mean) / std).astype(np.float32)
    model = fit(xn, y_tr, cfg, seed, f"[{variant}] site {init}", model=model, verbose=0)
    rng = np.random.default_rng(seed)
    calib = xn[rng.choice(len(xn), size=min(200, len(xn)), replace=False)]
    _float_bytes, int8_bytes = export_tflite(model, n_f, calib)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    file = f"{name}.tflite"
    (out_dir / file).write_bytes(int8_bytes)
    digest = hashlib.sha256(int8_bytes).hexdigest()
    now = datetime.now(UTC)
    version = f"site-{now.strftime('%Y%m%dT%H%M%S')}-{digest[:8]}"
    start = f"fine-tuned from {model_version(name, cur_entry)}" if init == "current" else "trained fresh"
    entry = scorer_entry(
        file=file,
        variant=variant,
        version=version,
        data=int8_bytes,
        recipe=(
            f"flexscore train --from-store ({start}) "
            f"on {len(y_tr)} clinician-labelled site trials; full int8, calibrated on {len(calib)} of them"
        ),
        signature=tflite_signature(out_dir / file),
        features=feature_names(variant),
        steps=N_STEPS,
        mean=mean,
        std=std,
        training={"seed": seed, "init": init, "small": small, **cfg},
    )
    update_manifest(out_dir, {name: entry}, keep_others=False)
    cand = RNNScorer(out_dir, name)
    cur = RNNScorer(current_dir, name)
    try:
        x_held, y_held = data.x[held_idx], data.y[held_idx]
        held = {
            "n": len(held_idx),
            "trial_ids": data.trial_ids[held_idx].tolist(),
            "labels": y_held.tolist(),
            **compare(cand, cur, x_held, y_held),
        }
        rx, ry = reference_set(variant)
        reference = {"per_class": REFERENCE_PER_CLASS, "seed": REFERENCE_SEED, **compare(cand, cur, rx, ry)}
    finally:
        cand.close()
        cur.close()
    problems = gate(held, reference)
    report = {
        "format": CANDIDATE_FORMAT,
        "created_at": now.isoformat(timespec="seconds"),
        "name": name,
        "variant": variant,
        "candidate": {"version": version, "sha256": digest, "file": file},
        "current": {
            "version": model_version(name, cur_entry),
            "sha256": cur_entry.get("sha256"),
            "source": str(current_dir),
        },
        "store": {
            "file": Path(store_path).name,
            "usable": len(data.y),
            "skipped": data.skipped,
            "clinician_not_scorable": data.not_scorable,
        },
        "split": {
            "heldout_share": heldout,
            "by": "patient (a trial without a patient counts as its own)",
            "heldout_patients": len({int(g) for g in data.groups[held_idx] if g > 0}),
            "train_patients": len({int(g) for g in data.groups[tr_idx] if g > 0}),
            "seed": seed,
            "train": _counts(y_tr),
            "heldout": _counts(data.y[held_idx]),
        },
        "heldout": held,
        "reference": reference,
        "gate": {"passed": not problems, "problems": problems},
        "training": entry["training"],
    }
    (out_dir / REPORT_NAME).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    log.info("candidate %s written to %s", version, out_dir)
    return report
