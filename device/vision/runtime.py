"""One TFLite interpreter wrapper: ai-edge-litert first, tflite-runtime as fallback.

Every model the product runs is described in ``models/manifest.json`` (written by
``scripts/build_models.py`` and ``scripts/train_scorer.py``). Loading checks, before the
interpreter sees the file, that it exists and its sha256 matches, then that its input/output
tensors match the manifest — a missing, corrupt, or wrong model is a :class:`ModelError`
that names the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import ModelError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_sha_cache: dict[tuple[str, float, int], str] = {}
_sha_lock = threading.Lock()


def interpreter_class() -> tuple[type[Any], str]:
    """The Interpreter class and the name of the runtime providing it."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef,unused-ignore]

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise ModelError(
            "no TFLite runtime installed: install 'ai-edge-litert' (or 'tflite-runtime')"
        ) from None


def sha256_file(path: Path) -> str:
    """sha256 of a file, cached per (path, mtime, size) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime, st.st_size)
    with _sha_lock:
        if key in _sha_cache:
            return _sha_cache[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _sha_lock:
        _sha_cache[key] = digest
    return digest


def load_manifest(models_dir: Path) -> dict[str, Any]:
    """Read ``models_dir/manifest.json``; a clear ModelError if missing or invalid."""
    path = Path(models_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"model manifest not found: {path} (run scripts/build_models.py, "
            "or set models.dir / FLEXSCORE_MODELS_DIR)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest {path} is unreadable: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ModelError(f"model manifest {path} has no 'models' table")
    return data


def model_name(kind: str, complexity: str, precision: str) -> str:
    """Manifest key of a hand model, e.g. ``hand_landmark_lite_int8``."""
    prefix = {"palm": "palm_detection", "landmark": "hand_landmark"}[kind]
    return f"{prefix}_{complexity}_{precision}"


class TFLiteModel:
    """A loaded, verified model. ``run(x)`` returns outputs in manifest order, as float32.

    Not thread-safe: one model per thread (the tracker owns its models).
    """

    def __init__(self, path: Path, entry: dict[str, Any], threads: int = 2) -> None:
        self.path = path
        self.name = str(entry.get("name", path.stem))
        self.entry = entry
        interp_cls, self.runtime = interpreter_class()
        try:
            self._interp = interp_cls(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model file {path} is corrupt or not a TFLite model: {exc}") from None
        self._inputs = self._interp.get_input_details()
        outs = {d["name"]: d for d in self._interp.get_output_details()}
        self._check_signature(outs)
        names = [o["name"] for o in entry.get("outputs", [])] or sorted(outs)
        self._outputs = [outs[n] for n in names]
        self._closed = False
        self.invoke_seconds = 0.0  # time inside invoke() only (for overhead accounting)
        self.invocations = 0

    def _check_signature(self, outs: dict[str, dict[str, Any]]) -> None:
        def fmt(d: dict[str, Any]) -> tuple[str, list[int], str]:
            return (d["name"], [int(v) for v in d["shape"]], np.dtype(d["dtype"]).name)

        want_in = [(i["name"], list(i["shape"]), i["dtype"]) for i in self.entry.get("inputs", [])]
        got_in = [fmt(d) for d in self._inputs]
        if want_in and sorted(want_in) != sorted(got_in):
            raise ModelError(
                f"model file {self.path} has inputs {got_in}, the manifest expects {want_in} "
                "(wrong model file?)"
            )
        want_out = [
            (o["name"], list(o["shape"]), o["dtype"]) for o in self.entry.get("outputs", [])
        ]
        got_out = [fmt(d) for d in outs.values()]
        if want_out and sorted(want_out) != sorted(got_out):
            raise ModelError(
                f"model file {self.path} has outputs {got_out}, the manifest expects {want_out} "
                "(wrong model file?)"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._inputs[0]["shape"])

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Invoke on float inputs; quantized inputs/outputs are converted here."""
        for detail, x in zip(self._inputs, inputs, strict=True):
            self._interp.set_tensor(detail["index"], _quantize(x, detail))
        return self._invoke()

    def run_filled(self, fill: Callable[[np.ndarray], object]) -> list[np.ndarray]:
        """Invoke after ``fill(buffer)`` has written the (only, float) input in place.

        ``buffer`` is the interpreter's own input tensor, so a large input (a camera crop)
        is written once instead of being built and then copied by ``set_tensor``. ``fill``
        must not keep a reference to it. A model with a quantized input or several inputs
        gets a fresh buffer that :meth:`run` converts and copies.
        """
        detail = self._inputs[0]
        if len(self._inputs) != 1 or np.dtype(detail["dtype"]) != np.float32:
            buffer = np.empty(self.input_shape, np.float32)
            fill(buffer)
            return self.run(buffer)
        view = self._interp.tensor(detail["index"])()
        try:
            fill(view)
        finally:
            del view  # the interpreter refuses to invoke while a view of its memory exists
        return self._invoke()

    def _invoke(self) -> list[np.ndarray]:
        t0 = time.perf_counter()
        self._interp.invoke()
        self.invoke_seconds += time.perf_counter() - t0
        self.invocations += 1
        return [_dequantize(self._interp.get_tensor(d["index"]), d) for d in self._outputs]

    def invoke_only(self) -> None:
        """Invoke on whatever the input tensors hold (for bare-invoke benchmarks)."""
        self._interp.invoke()

    def reset(self) -> None:
        """Zero the model's variable tensors (e.g. an RNN's hidden/cell state).

        TFLite keeps stateful ops' state in variable tensors across ``invoke()`` calls; a
        model that scores independent sequences must be reset before each one.
        """
        if self._closed:
            raise ModelError(f"model {self.name} is closed")
        reset = getattr(self._interp, "reset_all_variables", None)
        if reset is None:
            raise ModelError(f"model {self.name}: the {self.runtime} runtime cannot reset variables")
        reset()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._interp = None
            log.debug("closed model %s", self.name)

    def __enter__(self) -> TFLiteModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.runtime
        return f"<TFLiteModel {self.name} ({state})>"


def _quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return np.ascontiguousarray(x, dtype=np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float32) / scale + zero)
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if y.dtype == np.float32:
        return y
    scale, zero = detail["quantization"]
    if not scale:
        return y.astype(np.float32)
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def load_model(models_dir: Path, name: str, threads: int = 2) -> TFLiteModel:
    """Load the manifest entry ``name`` from ``models_dir`` after verifying it."""
    models_dir = Path(models_dir)
    manifest = load_manifest(models_dir)
    entry = manifest["models"].get(name)
    if entry is None:
        known = ", ".join(sorted(manifest["models"])) or "none"
        raise ModelError(f"model '{name}' is not in {models_dir / MANIFEST_NAME} (known: {known})")
    path = models_dir / entry["file"]
    if not path.is_file():
        raise ModelError(f"model file missing: {path} (run scripts/build_models.py)")
    digest = sha256_file(path)
    if entry.get("sha256") and digest != entry["sha256"]:
        raise ModelError(
            f"model file {path} does not match the manifest (sha256 {digest[:12]}…, "
            f"expected {entry['sha256'][:12]}…): the file is corrupt or was replaced"
        )
    entry = {"name": name, **entry}
    model = TFLiteModel(path, entry, threads)
    log.info("loaded %s (%s, %d threads)", name, model.runtime, threads)
    return model
