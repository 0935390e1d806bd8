"""Writing model manifests: the entries the build and training tools add to ``manifest.json``.

Reading one is runtime (:func:`device.vision.runtime.load_manifest`, which every model load
and ``flexscore models install`` use); writing is tooling: ``scripts/build_models.py`` (palm and
landmark models), ``scripts/train_scorer.py`` (the shipped scorers) and ``flexscore train
--from-store`` (a site candidate, :mod:`device.tools.training`). The format::

    {"version": 1, "models": {NAME: {"file", "kind", ..., "sha256", "bytes", "inputs",
                                     "outputs", ...}}}

``inputs`` / ``outputs`` are the tensors' name, shape and dtype, as the runtime checks them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from device.vision.runtime import MANIFEST_NAME, interpreter_class, load_manifest

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


def interpreter_signature(interp: Any) -> dict[str, list[dict[str, Any]]]:
    """``{"inputs": [...], "outputs": [...]}`` (name, shape, dtype) of a loaded interpreter."""

    def desc(d: dict[str, Any]) -> dict[str, Any]:
        return {"name": d["name"], "shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name}

    return {
        "inputs": [desc(d) for d in interp.get_input_details()],
        "outputs": [desc(d) for d in interp.get_output_details()],
    }


def tflite_signature(model: Path | bytes) -> dict[str, list[dict[str, Any]]]:
    """The manifest's ``inputs`` / ``outputs`` of a TFLite file or its bytes."""
    cls, _ = interpreter_class()
    interp = cls(model_content=model) if isinstance(model, bytes) else cls(model_path=str(model))
    interp.allocate_tensors()
    return interpreter_signature(interp)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # The lock lives outside models/ so nothing stray lands next to the committed files.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    lock = Path(tempfile.gettempdir()) / f"flexscore-{digest}.lock"
    with lock.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def update_manifest(
    models_dir: Path, entries: dict[str, dict[str, Any]], *, keep_others: bool = True
) -> bool:
    """Read-modify-write of ``models_dir/manifest.json``: replace or add ``entries`` by name,
    keep every other entry and key (``keep_others=False``: the manifest holds ``entries`` only,
    as a candidate directory's does). Written atomically, under a lock (two tools may update
    one manifest at once), and only when the text changes; returns whether it did."""
    path = Path(models_dir) / MANIFEST_NAME
    with _locked(path):
        if keep_others and path.is_file():
            data = load_manifest(path.parent)
            data.setdefault("version", MANIFEST_VERSION)
        else:
            data = {"version": MANIFEST_VERSION, "models": {}}
        data["models"].update(entries)
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            log.info("unchanged  %s", path)
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        log.info("wrote      %s", path)
        return True


def scorer_entry(
    *,
    file: str,
    variant: str,
    data: bytes,
    recipe: str,
    signature: dict[str, Any],
    features: Sequence[str],
    steps: int,
    mean: Iterable[float],
    std: Iterable[float],
    training: dict[str, Any],
    version: str | None = None,
    metrics: dict[str, Any] | None = None,
    item: str | None = None,
) -> dict[str, Any]:
    """The manifest entry of a full-int8 scorer (``"kind": "scorer"``) whose file holds
    ``data``: what :class:`device.scoring.rnn.RNNScorer` reads (features, steps, classes,
    normalisation) and what the runtime checks (sha256, size, tensors); ``item``: the
    assessment item it scores, when not the default one."""
    entry: dict[str, Any] = {"file": file, "kind": "scorer", "variant": variant, "precision": "int8"}
    if version is not None:
        entry["version"] = version
    entry |= {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "license": "Apache-2.0",
        "recipe": recipe,
        **({"item": item} if item else {}),
        **signature,
        "features": list(features),
        "steps": steps,
        "classes": [0, 1, 2],
        "normalization": {
            "mean": [round(float(v), 6) for v in mean],
            "std": [round(float(v), 6) for v in std],
        },
    }
    if metrics is not None:
        entry["metrics"] = metrics
    entry["training"] = training
    return entry
