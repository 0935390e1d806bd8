#!/usr/bin/env python3
"""Build the hand-tracking models committed in ``models/``.

Stages
------
``fp32``  Download ``mediapipe==0.10.21`` (one x86_64 wheel, cached in ``.cache/wheels/``),
          check its sha256, extract the palm-detection and hand-landmark ``.tflite`` files,
          rewrite their fp16 constants (stored behind DEQUANTIZE ops) to fp32 constants, add a
          ``serving_default`` SignatureDef, verify that outputs equal the original's on a real
          frame and write ``models/*_fp32.tflite``.
``int8``  Quantize the fp32 files with ai-edge-quantizer (static full-int8 calibrated on real
          hand frames, and weight-only int8), evaluate them against fp32 on held-out frames and
          write ``models/*_int8.tflite`` / ``models/*_int8_weight_only.tflite``. Needs the separate
          quantizer venv (``.venv-quant``, see docs/MODELS.md) and the shared hand videos.

Every stage updates ``models/manifest.json`` by entry name (other entries are preserved) and
never rewrites a file whose bytes did not change. ``--check`` verifies the committed files
against the manifest (sha256, size, tensor signature) without any download.

Usage::

    .venv/bin/python scripts/build_models.py --stage fp32
    .venv-quant/bin/python scripts/build_models.py --stage int8
    .venv/bin/python scripts/build_models.py --check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the package's geometry and manifest code, from this checkout
    sys.path.insert(0, str(REPO))

from device.errors import FlexscoreError  # noqa: E402
from device.tools.manifest import interpreter_signature, update_manifest  # noqa: E402
from device.vision import landmarks as lmk  # noqa: E402
from device.vision import palm  # noqa: E402
from device.vision.geometry import Roi  # noqa: E402
from device.vision.runtime import load_manifest, sha256_file  # noqa: E402

logger = logging.getLogger("build_models")

MODELS_DIR = REPO / "models"
MANIFEST = MODELS_DIR / "manifest.json"
CACHE_DIR = REPO / ".cache" / "wheels"
TEST_FRAME = REPO / "tests" / "data" / "asl_hand_f210_crop.jpg"
TEST_FRAME_JSON = REPO / "tests" / "data" / "asl_hand_f210_crop.json"
SHARED_DATA = Path("/work/shared/data")
REFERENCE_JSON = SHARED_DATA / "models_reference" / "models_reference.json"

MEDIAPIPE_VERSION = "0.10.21"
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
LICENSE = "Apache-2.0"
TFLITE_IDENTIFIER = b"TFL3"
SIGNATURE_KEY = "serving_default"

PALM_SIZE = palm.INPUT_SIZE  # 192
LANDMARK_SIZE = lmk.INPUT_SIZE  # 224

# Allowed difference between the original (fp16 weights dequantized at load) and the fp32
# rewrite. Every fp16 value is exact in fp32, so only kernel-order effects can differ.
FP32_MAX_ABS_DIFF = 1e-4


@dataclass(frozen=True)
class SourceModel:
    """One model file inside the mediapipe wheel."""

    base: str  # e.g. "palm_detection_lite"
    kind: str  # "palm" | "landmark"
    complexity: str  # "lite" | "full"
    wheel_path: str

    @property
    def original_name(self) -> str:
        return Path(self.wheel_path).name


SOURCES: tuple[SourceModel, ...] = tuple(
    SourceModel(
        base=f"{stem}_{cx}",
        kind=kind,
        complexity=cx,
        wheel_path=f"mediapipe/modules/{stem}/{stem}_{cx}.tflite",
    )
    for stem, kind in (("palm_detection", "palm"), ("hand_landmark", "landmark"))
    for cx in ("lite", "full")
)


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless the file already holds exactly these bytes."""
    if path.exists() and path.read_bytes() == data:
        logger.info("unchanged  %s", path.relative_to(REPO))
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    logger.info("wrote      %s (%d bytes)", path.relative_to(REPO), len(data))
    return True


# --------------------------------------------------------------------------------------------
# wheel download and extraction
# --------------------------------------------------------------------------------------------


def fetch_wheel(cache_dir: Path) -> Path:
    """Return the cached mediapipe wheel, downloading it with pip when missing."""
    wheel = cache_dir / WHEEL_NAME
    if not wheel.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
            "--dest", str(cache_dir), f"mediapipe=={MEDIAPIPE_VERSION}",
        ]  # fmt: skip
        logger.info("downloading %s with pip (~36 MB) ...", WHEEL_NAME)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wheel.exists():
            raise BuildError(
                f"pip download of mediapipe=={MEDIAPIPE_VERSION} failed "
                f"(exit {result.returncode}):\n{result.stderr.strip()[-2000:]}"
            )
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise BuildError(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}; delete it and re-run")
    logger.info("wheel ok   %s (sha256 %s…)", wheel.name, digest[:12])
    return wheel


def load_reference_hashes(path: Path | None) -> dict[str, str]:
    if path is None or not path.exists():
        logger.info("no models_reference.json: original sha256 not cross-checked")
        return {}
    ref = json.loads(path.read_text(encoding="utf-8"))
    return {name: info["sha256"] for name, info in ref.items() if "sha256" in info}


def extract_originals(wheel: Path, reference: dict[str, str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as zf:
        for src in SOURCES:
            try:
                data = zf.read(src.wheel_path)
            except KeyError as exc:
                raise BuildError(f"{src.wheel_path} is not in {wheel.name}") from exc
            want = reference.get(src.original_name)
            got = sha256_bytes(data)
            if want is not None and want != got:
                raise BuildError(f"{src.wheel_path}: sha256 {got} differs from models_reference.json {want}")
            out[src.base] = data
    return out


# --------------------------------------------------------------------------------------------
# flatbuffer rewrite: fp16 -> fp32, signature
# --------------------------------------------------------------------------------------------


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:  # pragma: no cover - environment problem
        raise BuildError("ai_edge_litert is not installed in this Python") from exc
    return schema


def _opcode_name(schema: Any, code: Any) -> str:
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")


def _aligned_buffer_class(schema: Any) -> Any:
    """A BufferT whose data vector is 16-byte aligned (as the TFLite converter writes it)."""

    class AlignedBufferT(schema.BufferT):
        def Pack(self, builder: Any) -> int:
            data_off = None
            if self.data is not None and len(self.data) > 0:
                payload = np.asarray(self.data, dtype=np.uint8).tobytes()
                builder.StartVector(1, len(payload), 16)
                builder.head = builder.head - len(payload)
                builder.Bytes[builder.head : builder.head + len(payload)] = payload
                data_off = builder.EndVector()
            schema.BufferStart(builder)
            if data_off is not None:
                schema.BufferAddData(builder, data_off)
            if self.offset:
                schema.BufferAddOffset(builder, self.offset)
            if self.size:
                schema.BufferAddSize(builder, self.size)
            return int(schema.BufferEnd(builder))

    return AlignedBufferT


def pack_model(model: Any) -> bytes:
    import flatbuffers

    schema = _schema()
    aligned = _aligned_buffer_class(schema)
    new_buffers = []
    for buf in model.buffers:
        nb = aligned()
        nb.data, nb.offset, nb.size = buf.data, buf.offset, buf.size
        new_buffers.append(nb)
    model.buffers = new_buffers
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def unpack_model(data: bytes) -> Any:
    schema = _schema()
    if data[4:8] != TFLITE_IDENTIFIER:
        raise BuildError("not a TFLite flatbuffer (identifier is not TFL3)")
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    for buf in model.buffers or []:
        if buf.offset and buf.offset > 1:  # data stored after the flatbuffer: inline it
            end = buf.offset + buf.size
            if end > len(data):
                raise BuildError("buffer points past the end of the model file")
            buf.data = np.frombuffer(data[buf.offset : end], dtype=np.uint8)
            buf.offset, buf.size = 0, 0
    return model


def convert_fp16_to_fp32(data: bytes) -> tuple[bytes, int]:
    """Replace every constant-fp16 → DEQUANTIZE pair by an fp32 constant.

    Returns the new model bytes and the number of DEQUANTIZE ops removed.
    """
    schema = _schema()
    model = unpack_model(data)
    if len(model.subgraphs) != 1:
        raise BuildError(f"expected 1 subgraph, found {len(model.subgraphs)}")
    sg = model.subgraphs[0]
    consumers: dict[int, int] = {}
    for op in sg.operators:
        for t in op.inputs if op.inputs is not None else []:
            if t >= 0:
                consumers[t] = consumers.get(t, 0) + 1

    kept_ops = []
    removed = 0
    for op in sg.operators:
        name = _opcode_name(schema, model.operatorCodes[op.opcodeIndex])
        if name != "DEQUANTIZE":
            kept_ops.append(op)
            continue
        src, dst = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
        buf = model.buffers[src.buffer]
        if src.type != schema.TensorType.FLOAT16 or buf.data is None or len(buf.data) == 0:
            kept_ops.append(op)  # not a constant fp16 weight: leave it alone
            continue
        if dst.type != schema.TensorType.FLOAT32:
            raise BuildError(f"DEQUANTIZE output {dst.name!r} is not float32")
        w16 = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype="<f2")
        w32 = w16.astype("<f4")
        new_buf = schema.BufferT()
        new_buf.data = np.frombuffer(w32.tobytes(), dtype=np.uint8)
        model.buffers.append(new_buf)
        dst.buffer = len(model.buffers) - 1
        removed += 1
    sg.operators = kept_ops
    _drop_orphans(model)
    return pack_model(model), removed


def _drop_orphans(model: Any) -> None:
    """Remove tensors no op/subgraph uses, then unused buffers and operator codes."""
    sg = model.subgraphs[0]
    used_t: set[int] = set(sg.inputs) | set(sg.outputs)
    for op in sg.operators:
        for seq in (op.inputs, op.outputs, op.intermediates):
            if seq is not None:
                used_t.update(int(t) for t in seq if t >= 0)
    t_map = {old: new for new, old in enumerate(sorted(used_t))}

    def remap(seq: Iterable[int] | None) -> list[int] | None:
        if seq is None:
            return None
        return [t_map[int(t)] if t >= 0 else int(t) for t in seq]

    sg.tensors = [sg.tensors[i] for i in sorted(used_t)]
    sg.inputs, sg.outputs = remap(sg.inputs), remap(sg.outputs)
    for op in sg.operators:
        op.inputs, op.outputs = remap(op.inputs), remap(op.outputs)
        if op.intermediates is not None:
            op.intermediates = remap(op.intermediates)
    for sig in model.signatureDefs or []:
        for tm in list(sig.inputs or []) + list(sig.outputs or []):
            tm.tensorIndex = t_map[tm.tensorIndex]

    # buffers: keep index 0 (the empty sentinel), those of tensors and of metadata
    used_b = {0} | {t.buffer for t in sg.tensors}
    used_b |= {md.buffer for md in model.metadata or []}
    if model.metadataBuffer is not None:  # the quantizer can leave stale indices here
        model.metadataBuffer = [int(b) for b in model.metadataBuffer if int(b) < len(model.buffers)]
        used_b |= set(model.metadataBuffer)
    b_map = {old: new for new, old in enumerate(sorted(used_b))}
    model.buffers = [model.buffers[i] for i in sorted(used_b)]
    for t in sg.tensors:
        t.buffer = b_map[t.buffer]
    for md in model.metadata or []:
        md.buffer = b_map[md.buffer]
    if model.metadataBuffer is not None:
        model.metadataBuffer = [b_map[int(b)] for b in model.metadataBuffer]

    used_c = sorted({op.opcodeIndex for op in sg.operators})
    c_map = {old: new for new, old in enumerate(used_c)}
    model.operatorCodes = [model.operatorCodes[i] for i in used_c]
    for op in sg.operators:
        op.opcodeIndex = c_map[op.opcodeIndex]


def add_signature(data: bytes) -> bytes:
    """Add (or replace) a ``serving_default`` SignatureDef naming inputs/outputs by tensor name."""
    schema = _schema()
    model = unpack_model(data)
    sg = model.subgraphs[0]

    def tmap(idx: int) -> Any:
        tm = schema.TensorMapT()
        tm.name = sg.tensors[idx].name
        tm.tensorIndex = int(idx)
        return tm

    sig = schema.SignatureDefT()
    sig.signatureKey = SIGNATURE_KEY.encode()
    sig.subgraphIndex = 0
    sig.inputs = [tmap(i) for i in sg.inputs]
    sig.outputs = [tmap(i) for i in sg.outputs]
    model.signatureDefs = [sig]
    return pack_model(model)


# --------------------------------------------------------------------------------------------
# interpreter helpers and pre-processing (real frames)
# --------------------------------------------------------------------------------------------

FloatArray = npt.NDArray[np.float32]


def make_interpreter(model: bytes | Path, threads: int = 1) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, Path):
        interp = Interpreter(model_path=str(model), num_threads=threads)
    else:
        interp = Interpreter(model_content=model, num_threads=threads)
    interp.allocate_tensors()
    return interp


def run(interp: Any, x: FloatArray) -> dict[str, FloatArray]:
    inp = interp.get_input_details()[0]
    if inp["dtype"] == np.float32:
        interp.set_tensor(inp["index"], x[None].astype(np.float32))
    else:  # quantized input
        scale, zp = inp["quantization"]
        q = np.round(x / scale + zp)
        info = np.iinfo(inp["dtype"])
        interp.set_tensor(inp["index"], np.clip(q, info.min, info.max).astype(inp["dtype"])[None])
    interp.invoke()
    out: dict[str, FloatArray] = {}
    for d in interp.get_output_details():
        v = interp.get_tensor(d["index"])
        if d["dtype"] != np.float32:
            scale, zp = d["quantization"]
            v = (v.astype(np.float32) - zp) * scale
        out[d["name"]] = np.asarray(v, dtype=np.float32)
    return out


def resize_letterbox(rgb: npt.NDArray[np.uint8], size: int = PALM_SIZE) -> FloatArray:
    """Aspect-preserving resize into a ``size``×``size`` zero-bordered, centred float image.

    The int8 palm models' calibration input, and deliberately not the device's letterbox
    (:func:`device.vision.palm.letterbox`, MediaPipe's one bilinear warp with a fractional
    border, which the tracker and :func:`test_frame_inputs` use): the two differ by
    interpolation noise only, and this one keeps the committed int8 palm files reproducible
    byte for byte.
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((size, size, 3), np.float32)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = resized.astype(np.float32) / 255.0
    return out


def crop_matrix(roi: Roi) -> FloatArray:
    """The ROI's crop pixels → image pixels matrix (:meth:`Roi.input_to_image`) in float32,
    as the calibration crops were warped with."""
    return roi.input_to_image(LANDMARK_SIZE).astype(np.float32)


def warp_roi(rgb: npt.NDArray[np.uint8], roi: Roi) -> FloatArray:
    """The landmark models' calibration crop: one warp of the whole frame by
    :func:`crop_matrix`, the frame's edge repeated past the border.

    The tracker's :func:`device.vision.landmarks.warp_roi` copies the ROI's box out of the
    frame first (faster on a camera frame), which moves one grey level in most crops (961 of
    1053 calibration and evaluation crops): the committed int8 landmark files were calibrated
    on this warp, and keeping it keeps them reproducible byte for byte.
    """
    import cv2

    crop = cv2.warpAffine(
        rgb, crop_matrix(roi), (LANDMARK_SIZE, LANDMARK_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return crop.astype(np.float32) / 255.0


def test_frame_inputs() -> tuple[FloatArray, FloatArray]:
    """The committed test frame as the device feeds it to the palm model (letterbox) and to the
    landmark model (crop of the ROI from MediaPipe's landmarks)."""
    import cv2

    bgr = cv2.imread(str(TEST_FRAME))
    if bgr is None:
        raise BuildError(f"cannot read test frame {TEST_FRAME}")
    rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    ref = json.loads(TEST_FRAME_JSON.read_text(encoding="utf-8"))
    lm = np.asarray(ref["landmarks_px"], np.float64)
    return palm.letterbox(rgb)[0][0], lmk.warp_roi(rgb, lmk.roi_from_landmarks(lm))[0][0]


# --------------------------------------------------------------------------------------------
# manifest entries
# --------------------------------------------------------------------------------------------


def manifest_entry(
    name: str,
    src: SourceModel,
    precision: str,
    data: bytes,
    original: bytes,
    recipe: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "file": f"{name}.tflite",
        "kind": src.kind,
        "complexity": src.complexity,
        "precision": precision,
        "sha256": sha256_bytes(data),
        "bytes": len(data),
        "source": {
            "wheel": WHEEL_NAME,
            "wheel_sha256": WHEEL_SHA256,
            "path": src.wheel_path,
            "original_sha256": sha256_bytes(original),
        },
        "license": LICENSE,
        "recipe": recipe,
        **interpreter_signature(make_interpreter(data)),
    }
    if extra:
        entry.update(extra)
    return entry


# --------------------------------------------------------------------------------------------
# stage fp32
# --------------------------------------------------------------------------------------------


def build_fp32(
    originals: dict[str, bytes], verify: bool = True
) -> tuple[dict[str, bytes], dict[str, dict[str, Any]]]:
    palm_x, lm_x = test_frame_inputs() if verify else (None, None)
    files: dict[str, bytes] = {}
    entries: dict[str, dict[str, Any]] = {}
    for src in SOURCES:
        t0 = time.perf_counter()
        original = originals[src.base]
        converted, n_dq = convert_fp16_to_fp32(original)
        converted = add_signature(converted)
        name = f"{src.base}_fp32"
        o_sig = interpreter_signature(make_interpreter(original))
        c_sig = interpreter_signature(make_interpreter(converted))
        if o_sig != c_sig:
            raise BuildError(f"{name}: tensor signature changed: {o_sig} -> {c_sig}")
        if verify:
            x = palm_x if src.kind == "palm" else lm_x
            assert x is not None
            a = run(make_interpreter(original), x)
            b = run(make_interpreter(converted), x)
            diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
            if diff > FP32_MAX_ABS_DIFF:
                raise BuildError(f"{name}: outputs differ from the original by {diff:g}")
            logger.info(
                "%-26s %d DEQUANTIZE removed, %d → %d bytes, max |Δ| vs original %.2g (%.1f s)",
                name, n_dq, len(original), len(converted), diff, time.perf_counter() - t0,
            )  # fmt: skip
        recipe = (
            f"Extracted from the mediapipe {MEDIAPIPE_VERSION} wheel; the {n_dq} fp16 constant "
            "tensors feeding DEQUANTIZE ops were converted to fp32 constants (exact: fp16 ⊂ fp32), "
            "the DEQUANTIZE ops removed and orphaned tensors/buffers/op codes dropped; a "
            f"SignatureDef '{SIGNATURE_KEY}' (inputs/outputs by tensor name) was added; metadata "
            "kept. Checked by scripts/build_models.py: same tensor names/shapes, outputs equal the "
            f"original's within {FP32_MAX_ABS_DIFF:g} on tests/data/{TEST_FRAME.name}."
        )
        files[name] = converted
        entries[name] = manifest_entry(name, src, "fp32", converted, original, recipe)
    return files, entries


# --------------------------------------------------------------------------------------------
# stage int8: data, quantization, evaluation
# --------------------------------------------------------------------------------------------

# Calibration uses the even frames of these videos (licenses allow derived use: Apache-2.0,
# Pixabay, MIT). Evaluation uses their odd frames plus every frame of EVAL_ONLY_VIDEOS, which
# never reach calibration (the HaGRID demo clip is share-alike licensed: test use only).
CALIB_VIDEOS = (
    "asl_hand.25fps.mp4",
    "pixabay_hand_reach_open_129422.mp4",
    "pixabay_thumbs_up_44639.mp4",
    "hagrid_dynamic_dnd_palm_fist_palm.mp4",
    "mit_phone_open_fist_cycles.mp4",
)
EVAL_ONLY_VIDEOS = ("hagrid_demo_fist_to_palm_counting.mp4",)
PALM_SCORE_HEAD_REGEX = "classifier_palm|Identity_1"
# The landmark model's presence ("handflag") and handedness heads: a 1-wide fully connected
# layer and a sigmoid each. In int8 the logit's range comes from calibration; on hand crops
# the presence logit is always > 0, so int8 clamps presence at ≥ 0.5 (a lost hand is never
# dropped) and handedness to one side. Kept float: two tiny layers, no measurable cost.
LANDMARK_HEADS_REGEX = "conv_handedness|conv_handflag|Identity_1|Identity_2"
# The landmark model's world output (Identity_3, metres) is one fully connected layer on the
# pooled features of the last block, and it is far more sensitive than the image landmarks:
# measured on held-out crops, int8 weights in that layer alone move the joint angles by ~13°
# (median), int8 pooled features by ~3.5°, and int8 weights or activations in the last block
# (expansion conv → depthwise conv → global mean) by another ~4–5°. So the world tail is kept
# float: the last block's expansion and depthwise convolutions and the world layer compute in
# float32 with float16 weights (exact enough: fp16 weights change no angle by > 0.01°), and the
# mean pooling is float. The image-landmark layer (Identity) stays int8, fed from the float
# pooled features through one QUANTIZE op. Same tensor names in lite and full.
LANDMARK_WORLD_FP16_REGEX = "re_lu_30/|re_lu_31/|Identity_3"
LANDMARK_WORLD_FLOAT_REGEX = "global_average_pooling2d/Mean"
# ops (by type) each regex must select in the fp32 landmark model; checked before quantizing
LANDMARK_WORLD_OPS = {
    LANDMARK_WORLD_FP16_REGEX: ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"],
    LANDMARK_WORLD_FLOAT_REGEX: ["MEAN"],
}
TIMING_ROUNDS = 5
TIMING_ITERS = 30


@dataclass
class FrameSet:
    """Model inputs (uint8, to save memory) and where they came from."""

    palm: list[npt.NDArray[np.uint8]]
    palm_has_hand: list[bool]
    landmark: list[npt.NDArray[np.uint8]]
    landmark_roi: list[Roi]
    landmark_ref: list[npt.NDArray[np.float64]]
    # per entry of ``landmark``: (video, frame index, exposure-augmented copy?)
    landmark_frame: list[tuple[str, int, bool]]
    sources: dict[str, list[int]]
    # ROIs without a hand (off-hand regions, frames without one): evaluation only — the
    # presence head must still say "no hand" there (adding them to the calibration widened the
    # activation ranges and doubled the p95 landmark error; the float heads suffice)
    landmark_neg: list[npt.NDArray[np.uint8]]


def _empty_frameset() -> FrameSet:
    return FrameSet([], [], [], [], [], [], {}, [])


NEGATIVE_EVERY = 3  # one off-hand ROI per this many frames


def negative_roi(width: int, height: int, hand_roi: Roi | None) -> Roi | None:
    """A ROI of the frame without the hand: the hand ROI mirrored through the frame centre
    (same size and angle) when that lands clear of the hand, or the frame centre when the
    frame has no hand."""
    if hand_roi is None:
        return Roi(width / 2.0, height / 2.0, 0.6 * min(width, height), 0.0)
    mx, my = width - hand_roi.cx, height - hand_roi.cy
    if math.hypot(mx - hand_roi.cx, my - hand_roi.cy) < hand_roi.size:
        return None
    return Roi(mx, my, hand_roi.size, hand_roi.rotation)


def _read_reference(csv_path: Path) -> dict[int, npt.NDArray[np.float64]]:
    import csv

    out: dict[int, npt.NDArray[np.float64]] = {}
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["detected"] == "1":
                out[int(row["frame"])] = np.array(
                    [[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(21)], np.float64
                )
    return out


def collect_frames(data_dir: Path) -> tuple[FrameSet, FrameSet]:
    """Decode the shared videos into (calibration, evaluation) model inputs."""
    import cv2

    videos = data_dir / "videos"
    calib, evaluation = _empty_frameset(), _empty_frameset()
    for name in CALIB_VIDEOS + EVAL_ONLY_VIDEOS:
        path, ref_path = videos / name, videos / f"{name}.mp_reference.csv"
        if not path.is_file() or not ref_path.is_file():
            raise BuildError(f"calibration video or its reference missing: {path}")
        ref = _read_reference(ref_path)
        cap = cv2.VideoCapture(str(path))
        index = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                target = calib if name in CALIB_VIDEOS and index % 2 == 0 else evaluation
                hand_roi = None
                target.sources.setdefault(name, []).append(index)
                target.palm.append(letterbox_u8(rgb))
                target.palm_has_hand.append(index in ref)
                if index in ref:
                    # the tracker crops frame i with the ROI from frame i-1's landmarks
                    prev = ref.get(index - 1, ref[index])
                    hand_roi = roi = lmk.roi_from_landmarks(prev)
                    crop = warp_roi_u8(rgb, roi)
                    target.landmark.append(crop)
                    target.landmark_frame.append((name, index, False))
                    if target is calib:
                        # exposure the rooms at home bring: a copy of every second calibration
                        # crop over-exposed (gain 1.5, highlights clipped) or under-exposed
                        # (gamma 2), so the int8 ranges cover them
                        if index % 4 == 0:
                            target.landmark.append(_BRIGHT_LUT[crop])
                        else:
                            target.landmark.append(_DARK_LUT[crop])
                        target.landmark_frame.append((name, index, True))
                    target.landmark_roi.append(roi)
                    target.landmark_ref.append(ref[index])
                neg = negative_roi(rgb.shape[1], rgb.shape[0], hand_roi)
                if index % NEGATIVE_EVERY == 0 and neg is not None:
                    target.landmark_neg.append(warp_roi_u8(rgb, neg))
                index += 1
        finally:
            cap.release()
        logger.info("decoded    %-40s %d frames, %d with a reference hand", name, index, len(ref))
    return calib, evaluation


_BRIGHT_LUT = np.clip(np.arange(256) * 1.5 + 0.5, 0, 255).astype(np.uint8)
_DARK_LUT = (255.0 * (np.arange(256) / 255.0) ** 2.0 + 0.5).astype(np.uint8)


def letterbox_u8(rgb: npt.NDArray[np.uint8], size: int = PALM_SIZE) -> npt.NDArray[np.uint8]:
    return np.round(resize_letterbox(rgb, size) * 255.0).astype(np.uint8)


def warp_roi_u8(rgb: npt.NDArray[np.uint8], roi: Roi) -> npt.NDArray[np.uint8]:
    return np.round(warp_roi(rgb, roi) * 255.0).astype(np.uint8)


def as_input(x: npt.NDArray[np.uint8]) -> FloatArray:
    return x.astype(np.float32) / np.float32(255.0)


def _recipe(kind: str, mode: str) -> list[dict[str, Any]]:
    """ai-edge-quantizer recipe: static int8 (score head float for palm) or weight-only int8."""
    fp16_world = {
        "regex": LANDMARK_WORLD_FP16_REGEX,
        "operation": "*",
        "algorithm_key": "float_casting",
        "op_config": {
            "weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
            "compute_precision": "FLOAT",
            "explicit_dequantize": True,
        },
    }
    if mode == "int8_weight_only":
        weight = {"num_bits": 8, "symmetric": True, "granularity": "CHANNELWISE", "dtype": "INT"}
        recipe_wo: list[dict[str, Any]] = [
            {
                "regex": ".*",
                "operation": "*",
                "algorithm_key": "min_max_uniform_quantize",
                "op_config": {
                    "weight_tensor_config": weight,
                    "compute_precision": "FLOAT",
                    "explicit_dequantize": True,
                },
            }
        ]
        if kind == "landmark":
            recipe_wo.append(fp16_world)  # int8 weights there move the world angles by ~5°
        return recipe_wo
    recipe: list[dict[str, Any]] = [
        {
            "regex": ".*",
            "operation": "*",
            "algorithm_key": "min_max_uniform_quantize",
            "op_config": {
                "activation_tensor_config": {
                    "num_bits": 8, "symmetric": False, "granularity": "TENSORWISE", "dtype": "INT",
                },
                "weight_tensor_config": {
                    "num_bits": 8, "symmetric": True, "granularity": "CHANNELWISE", "dtype": "INT",
                },
                "compute_precision": "INTEGER",
                "explicit_dequantize": False,
            },
        }
    ]  # fmt: skip
    if kind == "palm":
        recipe.append({"regex": PALM_SCORE_HEAD_REGEX, "operation": "*", "algorithm_key": "no_quantize"})
    else:
        recipe.append({"regex": LANDMARK_HEADS_REGEX, "operation": "*", "algorithm_key": "no_quantize"})
        recipe.append(fp16_world)
        recipe.append({"regex": LANDMARK_WORLD_FLOAT_REGEX, "operation": "*", "algorithm_key": "no_quantize"})
    return recipe


def check_world_tail(fp32: bytes) -> None:
    """The world-tail regexes select exactly the intended ops of the fp32 landmark model.

    ai-edge-quantizer matches a recipe regex against an op's scope: its output tensor names
    joined by ';' (the full fused names of the fp32 model).
    """
    import re

    schema = _schema()
    model = unpack_model(fp32)
    sg = model.subgraphs[0]
    for regex, want in LANDMARK_WORLD_OPS.items():
        got = sorted(
            _opcode_name(schema, model.operatorCodes[op.opcodeIndex])
            for op in sg.operators
            if re.search(regex, ";".join(sg.tensors[t].name.decode() for t in op.outputs))
        )
        if got != sorted(want):
            raise BuildError(f"recipe regex {regex!r} selects {got} in the landmark model, expected {want}")


def quantize_model(
    fp32: bytes, kind: str, mode: str, calib_inputs: list[npt.NDArray[np.uint8]], threads: int
) -> bytes:
    try:
        from absl import logging as absl_logging
        from ai_edge_quantizer import quantizer

        absl_logging.set_verbosity(absl_logging.WARNING)
    except ImportError as exc:
        raise BuildError(
            "ai-edge-quantizer is not installed in this Python; create the quantizer venv:\n"
            "  python3.11 -m venv .venv-quant && .venv-quant/bin/pip install "
            "ai-edge-quantizer==0.10.0 opencv-python-headless\n"
            "and run: .venv-quant/bin/python scripts/build_models.py --stage int8"
        ) from exc
    if kind == "landmark":
        check_world_tail(fp32)
    qt = quantizer.Quantizer(bytearray(fp32), _recipe(kind, mode))
    result = None
    if qt.need_calibration:
        data = {SIGNATURE_KEY: [{"input_1": as_input(x)[None]} for x in calib_inputs]}
        t0 = time.perf_counter()
        result = qt.calibrate(data, num_threads=threads)
        logger.info("  calibrated on %d inputs in %.0f s", len(calib_inputs), time.perf_counter() - t0)
    out = qt.quantize(result, enable_progress_report=False).quantized_model
    if out is None:
        raise BuildError("ai-edge-quantizer returned no model")
    return restore_io_names(bytes(out), fp32)


def restore_io_names(model_bytes: bytes, reference: bytes) -> bytes:
    """Give the model's input/output tensors the reference model's names again.

    ai-edge-quantizer renames the float boundary tensors (``Identity`` → ``Identity_dequant``)
    and gives the old name to an internal int8 tensor; the runtime checks tensors by name, so
    swap them back (the internal tensor becomes ``<name>_int8``).
    """
    ref = unpack_model(reference).subgraphs[0]
    want_in = [ref.tensors[i].name for i in ref.inputs]
    want_out = [ref.tensors[i].name for i in ref.outputs]
    model = unpack_model(model_bytes)
    sg = model.subgraphs[0]
    if len(sg.inputs) != len(want_in) or len(sg.outputs) != len(want_out):
        raise BuildError("quantized model has a different number of inputs/outputs")
    changed = False
    for idxs, names in ((sg.inputs, want_in), (sg.outputs, want_out)):
        for idx, name in zip(idxs, names, strict=True):
            tensor = sg.tensors[idx]
            if tensor.name == name:
                continue
            for other in sg.tensors:
                if other.name == name:
                    other.name = name + b"_int8"
            tensor.name = name
            changed = True
    changed |= _float_io(model)
    for sig in model.signatureDefs or []:
        for tm in list(sig.inputs or []) + list(sig.outputs or []):
            tm.name = sg.tensors[tm.tensorIndex].name
    if changed:
        _drop_orphans(model)
    if not _short_names(model) and not changed:
        return model_bytes
    return pack_model(model)


def _short_names(model: Any) -> bool:
    """Shorten internal tensor names to their first ``;``-separated part (unique).

    The converter names a fused tensor after every op it absorbed
    (``a/BiasAdd;a/Conv2D;b/FusedBatchNormV3``); in a quantized model these names are ~1 %
    of the file, enough to push the lite landmark model over a third of the fp32 size.
    Model inputs and outputs keep their names (the runtime checks them).
    """
    sg = model.subgraphs[0]
    boundary = {int(i) for i in sg.inputs} | {int(i) for i in sg.outputs}
    taken = {sg.tensors[i].name for i in boundary}
    changed = False
    for i, t in enumerate(sg.tensors):
        if i in boundary or t.name is None:
            continue
        name = bytes(t.name)
        head, sep, tail = name.partition(b";")
        short = head
        suffix = tail.rsplit(b"_", 1)[-1] if sep else b""
        if sep and suffix in (b"quantized", b"dequant", b"dequantize"):
            short = head + b"_" + suffix  # keep the quantizer's tag
        n = 1
        while short in taken:
            n += 1
            short = head + b"#%d" % n
        taken.add(short)
        if short != name:
            t.name = short
            changed = True
    return changed


def _float_io(model: Any) -> bool:
    """Wrap every int8 model input (QUANTIZE) and output (DEQUANTIZE) in a float32 tensor.

    ai-edge-quantizer may make the model's boundary tensors int8; the tracker feeds float32 in
    [0, 1] and reads float32 from every variant, so the conversion happens inside the model. The
    float tensor takes the original name, the int8 one becomes ``<name>_int8``.
    """
    schema = _schema()
    sg = model.subgraphs[0]
    sg.inputs = [int(i) for i in sg.inputs]
    sg.outputs = [int(i) for i in sg.outputs]

    def opcode(op_name: str) -> int:
        builtin = getattr(schema.BuiltinOperator, op_name)
        for i, c in enumerate(model.operatorCodes):
            if _opcode_name(schema, c) == op_name:
                return i
        code = schema.OperatorCodeT()
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = min(builtin, 127)
        code.version = 1
        model.operatorCodes.append(code)
        return len(model.operatorCodes) - 1

    changed = False
    for is_input, idxs in ((True, sg.inputs), (False, sg.outputs)):
        for pos, idx in enumerate(list(idxs)):
            old = sg.tensors[idx]
            if old.type == schema.TensorType.FLOAT32:
                continue
            new = schema.TensorT()
            new.name, old.name = old.name, old.name + b"_int8"
            new.shape = [int(x) for x in old.shape]
            if old.shapeSignature is not None:
                new.shapeSignature = [int(x) for x in old.shapeSignature]
            new.type = schema.TensorType.FLOAT32
            new.buffer = 0
            sg.tensors.append(new)
            new_idx = len(sg.tensors) - 1
            op = schema.OperatorT()
            if is_input:
                op.opcodeIndex = opcode("QUANTIZE")
                op.inputs, op.outputs = [new_idx], [int(idx)]
                sg.operators.insert(0, op)
            else:
                op.opcodeIndex = opcode("DEQUANTIZE")
                op.inputs, op.outputs = [int(idx)], [new_idx]
                sg.operators.append(op)
            idxs[pos] = new_idx
            for sig in model.signatureDefs or []:
                for tm in (sig.inputs if is_input else sig.outputs) or []:
                    if tm.tensorIndex == idx:
                        tm.tensorIndex = new_idx
            changed = True
    return changed


def _sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0))), np.float32)


def eval_palm(ref_model: bytes, model: bytes, frames: FrameSet) -> dict[str, Any]:
    """Best-anchor score agreement and detection recall against the fp32 model."""
    a_it, b_it = make_interpreter(ref_model, 2), make_interpreter(model, 2)
    a_best, b_best, shift = [], [], []
    for x in frames.palm:
        xi = as_input(x)
        a, b = run(a_it, xi), run(b_it, xi)
        sa, sb = _sigmoid(a["Identity_1"].reshape(-1)), _sigmoid(b["Identity_1"].reshape(-1))
        a_best.append(float(sa.max()))
        b_best.append(float(sb.max()))
        k = int(sa.argmax())
        if sa[k] >= 0.5:  # keypoint/box shift at fp32's best anchor, in 192-px input pixels
            ra, rb = a["Identity"].reshape(-1, 18)[k], b["Identity"].reshape(-1, 18)[k]
            shift.append(float(np.max(np.abs(ra - rb))))
    fa, fb = np.array(a_best) >= 0.5, np.array(b_best) >= 0.5
    hand = np.array(frames.palm_has_hand)
    return {
        "frames": len(frames.palm),
        "fp32_detections": int(fa.sum()),
        "recall_vs_fp32": round(float((fa & fb).sum() / max(1, fa.sum())), 4),
        "false_detections_vs_fp32": int((fb & ~fa).sum()),
        "recall_vs_mediapipe_fp32": round(float((fa & hand).sum() / max(1, hand.sum())), 4),
        "recall_vs_mediapipe": round(float((fb & hand).sum() / max(1, hand.sum())), 4),
        "best_score_abs_diff_median": round(float(np.median(np.abs(np.subtract(a_best, b_best)))), 4),
        "best_score_abs_diff_max": round(float(np.max(np.abs(np.subtract(a_best, b_best)))), 4),
        "box_max_abs_diff_px192_median": round(float(np.median(shift)) if shift else 0.0, 3),
    }


def eval_landmark(ref_model: bytes, model: bytes, frames: FrameSet) -> dict[str, Any]:
    """Landmark error vs the fp32 model in % of hand size (longer side of fp32 landmark box),
    presence/handedness agreement, and the world output's joint angles vs fp32's (all held-out
    crops, and the clips never used for calibration alone)."""
    a_it, b_it = make_interpreter(ref_model, 2), make_interpreter(model, 2)
    errs, frame_means, pres, hands, world_a, world_b = [], [], [], [], [], []
    for x, roi in zip(frames.landmark, frames.landmark_roi, strict=True):
        m = crop_matrix(roi)
        xi = as_input(x)
        a, b = run(a_it, xi), run(b_it, xi)
        world_a.append(a["Identity_3"].reshape(21, 3))
        world_b.append(b["Identity_3"].reshape(21, 3))
        pa = a["Identity"].reshape(21, 3)[:, :2] @ m[:, :2].T + m[:, 2]
        pb = b["Identity"].reshape(21, 3)[:, :2] @ m[:, :2].T + m[:, 2]
        size = float(np.ptp(pa, axis=0).max())
        e = np.linalg.norm(pa - pb, axis=1) / max(size, 1e-6) * 100.0
        errs.append(e)
        frame_means.append(float(e.mean()))
        pres.append((float(a["Identity_1"].reshape(())), float(b["Identity_1"].reshape(()))))
        hands.append((float(a["Identity_2"].reshape(())), float(b["Identity_2"].reshape(()))))
    neg = []
    for x in frames.landmark_neg:
        xi = as_input(x)
        pa, pb = run(a_it, xi)["Identity_1"], run(b_it, xi)["Identity_1"]
        neg.append((float(pa.reshape(())), float(pb.reshape(()))))
    all_e = np.concatenate(errs)
    whole = np.array([f[0] in EVAL_ONLY_VIDEOS for f in frames.landmark_frame], bool)
    pa_, pb_ = np.array(pres).T
    ha, hb = np.array(hands).T
    na, nb = np.array(neg).reshape(-1, 2).T
    return {
        "crops": len(frames.landmark),
        "err_pct_median": round(float(np.median(all_e)), 3),
        "err_pct_p95": round(float(np.percentile(all_e, 95)), 3),
        "err_pct_max": round(float(all_e.max()), 3),
        "frame_mean_err_pct_p95": round(float(np.percentile(frame_means, 95)), 3),
        "presence_abs_diff_median": round(float(np.median(np.abs(pa_ - pb_))), 4),
        "presence_agreement": round(float(np.mean((pa_ > 0.5) == (pb_ > 0.5))), 4),
        "handedness_agreement": round(float(np.mean((ha > 0.5) == (hb > 0.5))), 4),
        "no_hand_crops": len(neg),
        "no_hand_presence_agreement": round(float(np.mean((na > 0.5) == (nb > 0.5))), 4) if neg else None,
        "no_hand_rejected_fp32": round(float(np.mean(na < 0.5)), 4) if neg else None,
        "no_hand_rejected": round(float(np.mean(nb < 0.5)), 4) if neg else None,
        "world": world_metrics(np.stack(world_a), np.stack(world_b), frames.landmark_frame),
        "world_whole_clip": dict(
            world_metrics(
                np.stack(world_a)[whole], np.stack(world_b)[whole],
                [f for f, w in zip(frames.landmark_frame, whole, strict=True) if w],
            ),
            clips=list(EVAL_ONLY_VIDEOS),
        ),
    }  # fmt: skip


# Open-hand and fist frames (inclusive ranges), from the frame ranges checked by eye in
# /work/shared/data/MANIFEST.md (pixabay_hand_reach_open: its auto segment "open 19–201", a
# relaxed open hand throughout). Clips without a range (asl_hand, pixabay_thumbs_up) count
# in the angle differences only.
OPEN_FRAMES: dict[str, tuple[tuple[int, int], ...]] = {
    "hagrid_dynamic_dnd_palm_fist_palm.mp4": ((0, 17), (56, 76)),
    "hagrid_demo_fist_to_palm_counting.mp4": ((63, 78),),
    "mit_phone_open_fist_cycles.mp4": ((0, 27), (37, 41), (49, 126), (137, 143)),
    "pixabay_hand_reach_open_129422.mp4": ((19, 201),),
}
FIST_FRAMES: dict[str, tuple[tuple[int, int], ...]] = {
    "hagrid_dynamic_dnd_palm_fist_palm.mp4": ((30, 53),),
    "hagrid_demo_fist_to_palm_counting.mp4": ((0, 2),),
    "mit_phone_open_fist_cycles.mp4": ((29, 35), (42, 48), (127, 136)),
}
ANGLE_DEFINITION = (
    "device.trial.kinematics.joint_angles on the model's world output (Identity_3, metres): "
    "per finger three joint flexion angles in degrees (thumb CMC/MCP/IP, fingers MCP/PIP/DIP); "
    "|variant − fp32| on the same crop; flexion sums = the three joints of a finger added"
)


def _kinematics() -> Any:
    """``device.trial.kinematics`` (pure numpy), importable from the quantizer venv too."""
    from device.trial import kinematics

    return kinematics


def _in_ranges(ranges: dict[str, tuple[tuple[int, int], ...]], video: str, index: int) -> bool:
    return any(lo <= index <= hi for lo, hi in ranges.get(video, ()))


def _pct(x: npt.NDArray[Any], q: float) -> float:
    return round(float(np.nanpercentile(x, q)), 2) if np.isfinite(x).any() else float("nan")


def world_metrics(
    world_ref: npt.NDArray[np.float32],
    world: npt.NDArray[np.float32],
    frames: Sequence[tuple[str, int, bool]],
) -> dict[str, Any]:
    """Joint angles from the variant's world landmarks against fp32's on the same crops.

    ``world_ref`` / ``world``: [N, 21, 3] metres; ``frames``: (video, index, _) per crop.
    """
    kin = _kinematics()
    a, b = kin.joint_angles(world_ref), kin.joint_angles(world)  # [N, 5, 3] degrees
    d = np.abs(a - b)
    per_joint = {
        f"{finger}_{joint}": [_pct(d[:, i, j], 50), _pct(d[:, i, j], 95)]
        for i, finger in enumerate(kin.FINGER_NAMES)
        for j, joint in enumerate(kin.JOINT_NAMES[i])
    }
    sa, sb = a.sum(axis=-1), b.sum(axis=-1)  # [N, 5]
    sums: dict[str, Any] = {}
    for label, ranges in (("open", OPEN_FRAMES), ("fist", FIST_FRAMES)):
        m = np.array([_in_ranges(ranges, v, i) for v, i, _ in frames], bool)
        sums[label] = {"frames": int(m.sum())}
        if m.any():
            for key, s in (("fp32", sa), ("variant", sb)):
                sums[label][key] = {
                    f: [_pct(s[m, k], 5), _pct(s[m, k], 50), _pct(s[m, k], 95)]
                    for k, f in enumerate(kin.FINGER_NAMES)
                }
    ds = np.abs(sa - sb)
    return {
        "crops": len(frames),
        "angle_abs_diff_deg_median": _pct(d, 50),
        "angle_abs_diff_deg_p95": _pct(d, 95),
        "angle_abs_diff_deg_max": round(float(np.nanmax(d)), 1),
        "per_joint_abs_diff_deg_median_p95": per_joint,
        "flexion_sum_abs_diff_deg_median": _pct(ds, 50),
        "flexion_sum_abs_diff_deg_p95": _pct(ds, 95),
        "flexion_sum_deg_p5_median_p95": sums,
    }


def world_outputs(model: bytes, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
    """The model's world landmarks [N, 21, 3] for uint8 crops."""
    it = make_interpreter(model, 2)
    return np.stack([run(it, as_input(x))["Identity_3"].reshape(21, 3) for x in crops])


def world_fp32_shift_baseline(fp32: bytes, frames: FrameSet) -> dict[str, Any]:
    """How far fp32's own joint angles move when its crop moves by one pixel (the tracker's
    ROI moves that much from frame to frame): the scale for the variants' differences."""
    shifted = [np.roll(x, 1, axis=1) for x in frames.landmark]
    base, moved = world_outputs(fp32, frames.landmark), world_outputs(fp32, shifted)
    m = world_metrics(base, moved, frames.landmark_frame)
    keys: tuple[str, ...] = ("crops", "angle_abs_diff_deg_median", "angle_abs_diff_deg_p95")
    keys += ("angle_abs_diff_deg_max", "flexion_sum_abs_diff_deg_median", "flexion_sum_abs_diff_deg_p95")
    return {k: m[k] for k in keys}


def eval_world_leave_one_clip_out(
    fp32: bytes, calib: FrameSet, evaluation: FrameSet, threads: int
) -> dict[str, Any]:
    """The static-int8 landmark recipe, re-calibrated without one calibration clip at a time
    and evaluated on every frame of that clip (whole clips held out); pooled and per clip."""
    crops: dict[str, list[tuple[npt.NDArray[np.uint8], tuple[str, int, bool]]]] = {}
    for fs in (calib, evaluation):
        for x, f in zip(fs.landmark, fs.landmark_frame, strict=True):
            if not f[2]:
                crops.setdefault(f[0], []).append((x, f))
    wa_all, wb_all, ids_all = [], [], []
    per_clip: dict[str, Any] = {}
    for clip in CALIB_VIDEOS:
        others = [x for x, f in zip(calib.landmark, calib.landmark_frame, strict=True) if f[0] != clip]
        cal = _subsample(others, CALIB_MAX)
        model = quantize_model(fp32, "landmark", "int8", cal, threads)
        items = sorted(crops[clip], key=lambda c: c[1][1])
        xs, ids = [x for x, _ in items], [f for _, f in items]
        wa, wb = world_outputs(fp32, xs), world_outputs(model, xs)
        m = world_metrics(wa, wb, ids)
        per_clip[clip] = {k: m[k] for k in ("crops", "angle_abs_diff_deg_median", "angle_abs_diff_deg_p95")}
        logger.info("  world, %s held out: %s", clip, per_clip[clip])
        wa_all.append(wa)
        wb_all.append(wb)
        ids_all.extend(ids)
    pooled = world_metrics(np.concatenate(wa_all), np.concatenate(wb_all), ids_all)
    return dict(pooled, per_clip=per_clip, calibration=f"{CALIB_MAX} crops of the other calibration clips")


def time_invoke(models: dict[str, bytes], x: FloatArray, threads: int) -> dict[str, float]:
    """Median invoke time (ms), rounds interleaved across models to share machine noise."""
    interps = {n: make_interpreter(m, threads) for n, m in models.items()}
    samples: dict[str, list[float]] = {n: [] for n in models}
    for it in interps.values():
        for _ in range(5):
            run(it, x)
    inp = {n: it.get_input_details()[0]["index"] for n, it in interps.items()}
    for _ in range(TIMING_ROUNDS):
        for n, it in interps.items():
            it.set_tensor(inp[n], x[None])
            for _ in range(TIMING_ITERS):
                t0 = time.perf_counter()
                it.invoke()
                samples[n].append((time.perf_counter() - t0) * 1e3)
    return {n: float(np.median(v)) for n, v in samples.items()}


def _subsample(items: list[Any], n: int) -> list[Any]:
    if len(items) <= n:
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


CALIB_MAX = 256


def build_int8(
    originals: dict[str, bytes], data_dir: Path, report_path: Path | None, calib_threads: int
) -> None:
    fp32_files: dict[str, bytes] = {}
    for src in SOURCES:
        path = MODELS_DIR / f"{src.base}_fp32.tflite"
        if not path.is_file():
            raise BuildError(f"{path} missing: run --stage fp32 first")
        fp32_files[src.base] = path.read_bytes()
    logger.info("decoding hand videos from %s ...", data_dir)
    calib, evaluation = collect_frames(data_dir)
    palm_cal = _subsample(calib.palm, CALIB_MAX)
    lm_cal = _subsample(calib.landmark, CALIB_MAX)
    if min(len(palm_cal), len(lm_cal)) < 200:
        raise BuildError(f"only {len(palm_cal)}/{len(lm_cal)} calibration frames (< 200)")
    calib_desc = {
        "frames": None,
        "videos": f"{data_dir}/videos: even frames (0, 2, 4, …) of " + ", ".join(CALIB_VIDEOS),
        "held_out": "odd frames of the same videos and every frame of " + ", ".join(EVAL_ONLY_VIDEOS),
        "decoder": "OpenCV VideoCapture, BGR→RGB",
    }
    report: dict[str, Any] = {"calibration": {}, "evaluation_frames": {}, "models": {}}
    files: dict[str, bytes] = {}
    entries: dict[str, dict[str, Any]] = {}
    shift_baseline: dict[str, dict[str, Any]] = {}
    for src in SOURCES:
        fp32 = fp32_files[src.base]
        cal = palm_cal if src.kind == "palm" else lm_cal
        for mode in ("int8", "int8_weight_only"):
            name = f"{src.base}_{mode}"
            logger.info("quantizing %s ...", name)
            data = quantize_model(fp32, src.kind, mode, cal, calib_threads)
            if src.kind == "palm":
                metrics = eval_palm(fp32, data, evaluation)
            else:
                metrics = eval_landmark(fp32, data, evaluation)
                if mode == "int8":
                    logger.info("  world output, leave one calibration clip out ...")
                    metrics["world_leave_one_clip_out"] = eval_world_leave_one_clip_out(
                        fp32, calib, evaluation, calib_threads
                    )
            logger.info("  %s: %d bytes (%.2f × fp32) %s", name, len(data), len(data) / len(fp32), metrics)
            files[name] = data
            if mode == "int8":
                crop = (
                    "palm: whole frame letterboxed to 192×192 (aspect kept, zero border, centred)"
                    if src.kind == "palm"
                    else "landmark: ROI from the previous frame's MediaPipe reference landmarks "
                    "(rotation wrist→MCP mean, scale 2.0, shift_y −0.1, square) warped to 224×224, "
                    "the frame's edge pixels repeated where the ROI reaches past it (as MediaPipe "
                    "and the tracker crop)"
                )
                keep = (
                    f" The palm score head (ops matching '{PALM_SCORE_HEAD_REGEX}': the "
                    "classifier_palm convolutions, their reshapes and the score concatenation) "
                    "stays float32: it is numerically sensitive and float kept recall."
                    " PRELU has no int8 support in ai-edge-quantizer 0.10.0 and stays float "
                    "(quantize/dequantize around it)."
                    if src.kind == "palm"
                    else f" The presence and handedness heads (ops matching '{LANDMARK_HEADS_REGEX}':"
                    " one fully connected layer and a sigmoid each) stay float32: in int8 their "
                    "logit range, calibrated on hands, clamped presence at >= 0.5 and handedness "
                    "to one side. The world-landmark tail stays float32 compute: the last block's "
                    "expansion and depthwise convolutions and the world layer (ops matching "
                    f"'{LANDMARK_WORLD_FP16_REGEX}') with float16 weights, the mean pooling "
                    f"('{LANDMARK_WORLD_FLOAT_REGEX}') float; fully int8 the world output's joint "
                    "angles were off by tens of degrees."
                )
                recipe = (
                    "Static full-int8 of the fp32 model with ai-edge-quantizer 0.10.0 "
                    "(min/max uniform: int8 weights symmetric per-channel, int8 activations "
                    f"asymmetric per-tensor), calibrated on {len(cal)} real frames; {crop}; "
                    "floats in [0, 1]. Model input and outputs stay float32 with their original "
                    "names (the script adds a QUANTIZE op after the input and DEQUANTIZE ops "
                    "before the outputs, which the quantizer had made int8) so the tracker feeds "
                    "every variant the same tensors." + keep
                )
                extra: dict[str, Any] = {
                    "calibration": dict(calib_desc, frames=len(cal), crop=crop),
                }
            else:
                recipe = (
                    "Weight-only int8 of the fp32 model with ai-edge-quantizer 0.10.0: weights "
                    "int8 symmetric per-channel, dequantized to float32 at load; all compute and "
                    "activations float32; no calibration. Fallback variant."
                )
                if src.kind == "landmark":
                    recipe += (
                        " The world-landmark tail (ops matching "
                        f"'{LANDMARK_WORLD_FP16_REGEX}') keeps float16 weights instead: with int8 "
                        "weights there the world output's joint angles were off by ~15°."
                    )
                extra = {"calibration": None}
            extra["evaluation"] = dict(
                metrics, against=f"{src.base}_fp32", frames="held-out frames (see calibration)"
            )
            if src.kind == "landmark":
                extra["evaluation"]["world_angles"] = ANGLE_DEFINITION
                if src.base not in shift_baseline:
                    shift_baseline[src.base] = world_fp32_shift_baseline(fp32, evaluation)
                extra["evaluation"]["world_fp32_vs_itself_crop_shifted_1px"] = shift_baseline[src.base]
            entries[name] = manifest_entry(name, src, mode, data, originals[src.base], recipe, extra)
    report["models"] = {n: e["evaluation"] for n, e in entries.items()}
    report["calibration"] = calib_desc
    report["evaluation_frames"] = {
        "palm": len(evaluation.palm), "landmark": len(evaluation.landmark),
        "sources": {k: len(v) for k, v in evaluation.sources.items()},
    }  # fmt: skip
    # timing: every variant of one model in the same run, 1 and 2 threads
    timing: dict[str, Any] = {}
    for src in SOURCES:
        group = {f"{src.base}_fp32": fp32_files[src.base]}
        group.update({n: d for n, d in files.items() if n.startswith(src.base + "_")})
        x = as_input(evaluation.palm[0] if src.kind == "palm" else evaluation.landmark[0])
        for threads in (1, 2):
            ms = time_invoke(group, x, threads)
            for n, v in ms.items():
                timing.setdefault(n, {})[f"invoke_ms_{threads}t"] = round(v, 3)
            logger.info("  timing %s, %d thread(s): %s", src.base, threads,
                        {n: round(v, 2) for n, v in ms.items()})  # fmt: skip
    for n, t in timing.items():
        t["bytes"] = len(files[n]) if n in files else len(fp32_files[n.removesuffix("_fp32")])
    report["timing"] = timing
    for name, data in files.items():
        write_if_changed(MODELS_DIR / f"{name}.tflite", data)
    update_manifest(MODELS_DIR, entries)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        logger.info("report     %s", report_path)


# --------------------------------------------------------------------------------------------
# --check
# --------------------------------------------------------------------------------------------


def check(models_dir: Path = MODELS_DIR) -> list[str]:
    """Verify every manifest entry against its file; return a list of problems."""
    problems: list[str] = []
    manifest = load_manifest(models_dir)
    for name, entry in manifest["models"].items():
        path = models_dir / entry.get("file", "")
        if not path.is_file():
            problems.append(f"{name}: file {path} is missing")
            continue
        data = path.read_bytes()
        if len(data) != entry.get("bytes"):
            problems.append(f"{name}: {len(data)} bytes, manifest says {entry.get('bytes')}")
        if sha256_bytes(data) != entry.get("sha256"):
            problems.append(f"{name}: sha256 {sha256_bytes(data)} != manifest {entry.get('sha256')}")
            continue
        try:
            sig = interpreter_signature(make_interpreter(data))
        except (RuntimeError, ValueError) as exc:
            problems.append(f"{name}: interpreter cannot load it: {exc}")
            continue
        for key in ("inputs", "outputs"):
            if key in entry and sig[key] != entry[key]:
                problems.append(f"{name}: {key} {sig[key]} != manifest {entry[key]}")
        logger.info("ok         %s", name)
    return problems


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--stage", choices=("fp32", "int8", "all"), default="fp32")
    p.add_argument("--check", action="store_true", help="verify models/ against the manifest")
    p.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    p.add_argument("--reference-json", type=Path, default=REFERENCE_JSON)
    p.add_argument("--data-dir", type=Path, default=SHARED_DATA, help="hand videos (int8)")
    p.add_argument("--report", type=Path, default=None, help="write the int8 evaluation JSON")
    p.add_argument("--calib-threads", type=int, default=2, help="threads for calibration")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(message)s",
    )
    try:
        if args.check:
            problems = check()
            for msg in problems:
                logger.error("%s", msg)
            if problems:
                return 1
            logger.info("all models match %s", MANIFEST.relative_to(REPO))
            return 0
        wheel = fetch_wheel(args.cache_dir)
        originals = extract_originals(wheel, load_reference_hashes(args.reference_json))
        if args.stage in ("fp32", "all"):
            files, entries = build_fp32(originals)
            for name, data in files.items():
                write_if_changed(MODELS_DIR / f"{name}.tflite", data)
            update_manifest(MODELS_DIR, entries)
        if args.stage in ("int8", "all"):
            build_int8(originals, args.data_dir, args.report, args.calib_threads)
    except (BuildError, FlexscoreError) as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
