"""``flexscore bench``: speed and accuracy measured in one run, reported as ratios.

All timings in one report come from the same process on the same decoded frames, and each
measurement is repeated in interleaved rounds (variant A, B, …, A, B, …) and the median
round is kept, so a neighbour's load on a shared machine hits every variant alike. Never
used as a timed assertion in tests.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from device import __version__
from device.config import Config, replace
from device.errors import FlexscoreError, ModelError
from device.video import read_frames
from device.vision import landmarks as lmk
from device.vision import palm
from device.vision.geometry import Roi
from device.vision.runtime import TFLiteModel, load_manifest, load_model, model_name
from device.vision.tracker import HandTracker

log = logging.getLogger(__name__)

# The MediaPipe reference runner that ``--reference-python`` runs (shipped in the package; it
# imports only mediapipe, numpy and cv2, which the reference venv has).
REFERENCE_SCRIPT = Path(__file__).resolve().with_name("reference_hands.py")
REFERENCE_HINT = (
    "a venv with mediapipe==0.10.21 and numpy<2: scripts/make_reference_venv.sh in a checkout, "
    "or python3.11 -m venv DIR && DIR/bin/pip install mediapipe==0.10.21 'numpy<2'"
)
ALL_SECTIONS = ("models", "tracker", "accuracy", "reference", "scoring", "daemon")


def machine_info() -> dict[str, Any]:
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "flexscore": __version__,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],  # others' load on a shared machine
    }


def _median_of_rounds(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def available_variants(models_dir: Path) -> list[tuple[str, str]]:
    """(complexity, precision) pairs with both palm and landmark models in the manifest."""
    names = set(load_manifest(models_dir)["models"])
    out = []
    for c in ("lite", "full"):
        for p in ("fp32", "int8"):
            if model_name("palm", c, p) in names and model_name("landmark", c, p) in names:
                out.append((c, p))
    return out


def _time_invokes(model: TFLiteModel, x: np.ndarray, n: int) -> float:
    model.run(x)  # warm-up, and fills the input
    t0 = time.perf_counter()
    for _ in range(n):
        model.invoke_only()
    return (time.perf_counter() - t0) / n * 1e3


def bench_models(models_dir: Path, frames: list[np.ndarray], rounds: int) -> list[dict[str, Any]]:
    """Size and bare invoke time (1 and 2 threads) of every palm/landmark model."""
    manifest = load_manifest(models_dir)["models"]
    names = sorted(n for n, e in manifest.items() if e.get("kind") in ("palm", "landmark"))
    frame = frames[len(frames) // 2]
    palm_in, _ = palm.letterbox(frame)
    lm_in = np.ascontiguousarray(
        __import__("cv2").resize(frame, (lmk.INPUT_SIZE, lmk.INPUT_SIZE))[None], dtype=np.float32
    ) / np.float32(255.0)
    loaded = {(n, t): load_model(models_dir, n, t) for n in names for t in (1, 2)}
    times: dict[tuple[str, int], list[float]] = {k: [] for k in loaded}
    try:
        for _ in range(rounds):
            for (n, t), m in loaded.items():
                x = palm_in if manifest[n]["kind"] == "palm" else lm_in
                times[(n, t)].append(_time_invokes(m, x, 30))
    finally:
        for m in loaded.values():
            m.close()
    rows = []
    for n in names:
        e = manifest[n]
        rows.append({
            "model": n, "kind": e["kind"], "complexity": e.get("complexity"),
            "precision": e.get("precision"), "bytes": int(e.get("bytes", 0)),
            "invoke_ms_1t": round(_median_of_rounds(times[(n, 1)]), 3),
            "invoke_ms_2t": round(_median_of_rounds(times[(n, 2)]), 3),
        })  # fmt: skip
    return rows


def _run_tracker_once(tracker: HandTracker, frames: list[np.ndarray], fps: float) -> dict[str, float]:
    """One pass over the frames. Per-frame statistics are medians, as the MediaPipe side
    reports (reference_hands.py times each ``Hands.process`` and takes the median)."""
    tracker.reset()
    models = [tracker.palm_model, tracker.landmark_model]
    if tracker.precise_model is not None:
        models.append(tracker.precise_model)
    for m in models:
        m.invoke_seconds, m.invocations = 0.0, 0
    det0, lm0, pr0 = (tracker.stats.detector_runs, tracker.stats.landmark_runs,
                      tracker.stats.precise_runs)  # fmt: skip
    per_frame, per_invoke = [], []
    clock = time.perf_counter
    t_start = clock()
    for i, f in enumerate(frames):
        inv0 = sum(m.invoke_seconds for m in models)
        t0 = clock()
        tracker.process(f, i / fps)
        per_frame.append(clock() - t0)
        per_invoke.append(sum(m.invoke_seconds for m in models) - inv0)
    total = clock() - t_start
    frame_ms = np.array(per_frame) * 1e3
    invoke_ms = np.array(per_invoke) * 1e3
    return {
        "ms_per_frame": float(np.median(frame_ms)),
        "mean_ms_per_frame": total / len(frames) * 1e3,
        "invoke_ms_per_frame": float(np.median(invoke_ms)),
        "python_ms_per_frame": float(np.median(frame_ms - invoke_ms)),
        "detector_runs": float(tracker.stats.detector_runs - det0),
        "precise_share": (tracker.stats.precise_runs - pr0)
        / max(tracker.stats.landmark_runs - lm0, 1),
    }


class _Replayed:
    """Stands in for a tracker's model to time the tracker's own work without the models.

    While ``recording`` it runs the real model and keeps every call's outputs; on replay it
    fills the input the same way (so the crop is timed) into its own buffer and returns the
    recorded outputs in order, without invoking. The tracker then walks the very same ROIs.
    The wrapped model belongs to the real tracker, which closes it.
    """

    def __init__(self, model: TFLiteModel) -> None:
        self.model = model
        self.name = model.name
        self.invoke_seconds, self.invocations = 0.0, 0
        self.recording = True
        self._outputs: list[list[np.ndarray]] = []
        self._next = 0
        self._buffer = np.zeros(model.input_shape, np.float32)

    def rewind(self) -> None:
        self.recording, self._next = False, 0

    def _recorded(self, outputs: list[np.ndarray] | None) -> list[np.ndarray]:
        if self.recording:
            assert outputs is not None
            self._outputs.append(outputs)
            return outputs
        self._next += 1
        return [o.copy() for o in self._outputs[self._next - 1]]  # as get_tensor() copies

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self._recorded(self.model.run(*inputs) if self.recording else None)

    def run_filled(self, fill: Callable[[np.ndarray], object]) -> list[np.ndarray]:
        if self.recording:
            return self._recorded(self.model.run_filled(fill))
        fill(self._buffer)
        return self._recorded(None)

    def close(self) -> None:
        pass


def _replay_tracker(tracker: HandTracker, frames: list[np.ndarray], fps: float) -> Callable[[float], float]:
    """Record one pass of ``tracker`` and return ``replay(pause_s)``: the median time per frame
    of the tracker's own work (checks, crop, un-projection, filter, next ROI) over the same
    frames with the recorded model outputs, with an idle pause of ``pause_s`` before each
    frame (0: back to back). The pause stands in for the invoke the replay leaves out."""
    models = [tracker.palm_model, tracker.landmark_model, tracker.precise_model]
    stand_ins = [None if m is None else _Replayed(m) for m in models]
    palm_in, landmark_in, precise_in = cast(list[TFLiteModel], stand_ins)  # duck-typed stand-ins
    replay = HandTracker(palm_in, landmark_in, tracker.cfg, precise_in)
    _run_tracker_once(replay, frames, fps)
    clock = time.perf_counter

    def run(pause_s: float) -> float:
        for m in stand_ins:
            if m is not None:
                m.rewind()
        replay.reset()
        per_frame = []
        for i, f in enumerate(frames):
            if pause_s:
                time.sleep(pause_s)
            t0 = clock()
            replay.process(f, i / fps)
            per_frame.append(clock() - t0)
        return float(np.median(per_frame)) * 1e3

    return run


PAUSE_S = 0.002  # about one landmark invoke


def bench_tracker(
    cfg: Config, variants: list[tuple[str, str]], frames: list[np.ndarray], fps: float,
    rounds: int, threads: int | list[int], between_rounds: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Whole-tracker time per frame for each variant (decoding excluded), interleaved.

    ``precision`` is the landmark model's; the palm detector runs the variant that
    ``models.palm_precision`` (default "auto") picks for it, reported as ``palm``.
    """
    from device.vision.tracker import build_tracker

    thread_list = [threads] if isinstance(threads, int) else list(threads)
    trackers = {}
    for c, p in variants:
        for t in thread_list:
            vcfg = replace(cfg, models=replace(cfg.models, complexity=c, precision=p, threads=t))
            trackers[(c, p, t)] = (build_tracker(vcfg), vcfg.models.resolved_palm_precision())
    runs: dict[tuple[str, str, int], list[dict[str, float]]] = {k: [] for k in trackers}
    try:
        for tr, _ in trackers.values():  # warm-up
            _run_tracker_once(tr, frames[: min(10, len(frames))], fps)
        replays = {k: _replay_tracker(tr, frames, fps) for k, (tr, _) in trackers.items()}
        for _ in range(rounds):
            for k, (tr, _) in trackers.items():
                one = _run_tracker_once(tr, frames, fps)
                one["own_work_ms_per_frame"] = replays[k](0.0)
                one["own_work_after_pause_ms_per_frame"] = replays[k](PAUSE_S)
                runs[k].append(one)
            if between_rounds is not None:
                between_rounds()
    finally:
        for tr, _ in trackers.values():
            tr.close()
    rows = []
    for (c, p, t), rs in runs.items():
        def med(key: str, rs: list[dict[str, float]] = rs) -> float:
            return _median_of_rounds([r[key] for r in rs])

        invoke, python = med("invoke_ms_per_frame"), med("python_ms_per_frame")
        own = med("own_work_ms_per_frame")
        rows.append({
            "complexity": c, "precision": p, "palm": trackers[(c, p, t)][1], "threads": t,
            "ms_per_frame": round(med("ms_per_frame"), 3),
            "mean_ms_per_frame": round(med("mean_ms_per_frame"), 3),
            "invoke_ms_per_frame": round(invoke, 3),
            "python_ms_per_frame": round(python, 3),
            "python_overhead": round(python / invoke, 3) if invoke > 0 else None,
            # the same work replayed without the models: back to back, and after an idle
            # pause as long as an invoke (shows what a shared host's caches cost it)
            "own_work_ms_per_frame": round(own, 3),
            "own_work_overhead": round(own / invoke, 3) if invoke > 0 else None,
            "own_work_after_pause_ms_per_frame": round(med("own_work_after_pause_ms_per_frame"), 3),
            "detector_runs": int(med("detector_runs")), "frames": len(frames),
            "precise_share": round(med("precise_share"), 3),
            "rounds_ms_per_frame": [round(r["ms_per_frame"], 3) for r in rs],
            "rounds_mean_ms_per_frame": [round(r["mean_ms_per_frame"], 3) for r in rs],
        })  # fmt: skip
    return rows


def bench_int8_accuracy(
    cfg: Config, variants: list[tuple[str, str]], frames: list[np.ndarray], fps: float
) -> list[dict[str, Any]]:
    """int8 vs fp32 on identical inputs: landmark error on the fp32 tracker's ROIs
    (% of hand size) and palm-detection recall against the fp32 detector."""
    from device.vision.tracker import build_tracker

    out = []
    models_dir = cfg.models.resolved_dir()
    for c in ("lite", "full"):
        if (c, "fp32") not in variants:
            continue
        others = [p for (cc, p) in variants if cc == c and p != "fp32"]
        known = load_manifest(models_dir)["models"]
        extra = [n for n in known if n.startswith(f"hand_landmark_{c}_") and n.endswith("weight_only")]
        palm_names = [model_name("palm", c, p) for p in others] + [
            n for n in known if n.startswith(f"palm_detection_{c}_") and n.endswith("weight_only")
        ]
        if not others and not extra:
            continue
        ref_cfg = replace(cfg, models=replace(cfg.models, complexity=c, precision="fp32"))
        with build_tracker(ref_cfg) as ref:
            rois: list[tuple[int, Roi]] = []
            palm_ref = []
            for i, f in enumerate(frames):
                obs = ref.process(f, i / fps)
                if obs and obs[0].landmarks is not None:
                    rois.append((i, lmk.roi_from_landmarks(obs[0].landmarks)))
                palm_ref.append(ref.detect_palms(f))
            for variant_name in [model_name("landmark", c, p) for p in others] + extra:
                m = load_model(models_dir, variant_name, 2)
                errs = []
                try:
                    for i, roi in rois:
                        f = frames[i]
                        x, to_img = lmk.warp_roi(f, roi)
                        r_ref = ref.landmark_model.run(x)
                        r_q = m.run(x)
                        a = lmk.unproject(r_ref[0], r_ref[3], 1, 0.5, roi, to_img).landmarks
                        b = lmk.unproject(r_q[0], r_q[3], 1, 0.5, roi, to_img).landmarks
                        size = float(np.ptp(a[:, :2], axis=0).max())
                        errs.append(float(np.linalg.norm(a[:, :2] - b[:, :2], axis=1).mean()) / size * 100)
                finally:
                    m.close()
                out.append({
                    "model": variant_name, "against": model_name("landmark", c, "fp32"),
                    "frames": len(errs),
                    "median_err_pct": round(float(np.median(errs)), 3) if errs else None,
                    "p95_err_pct": round(float(np.percentile(errs, 95)), 3) if errs else None,
                    "max_err_pct": round(float(np.max(errs)), 3) if errs else None,
                })  # fmt: skip
            for pname in palm_names:
                m = load_model(models_dir, pname, 2)
                anchors = palm.generate_anchors()
                hit = total = 0
                try:
                    for f, dets in zip(frames, palm_ref, strict=True):
                        if not dets:
                            continue
                        x, lb = palm.letterbox(f)
                        boxes, scores = m.run(x)
                        q = palm.postprocess(boxes, scores, anchors, lb)
                        for d in dets:
                            total += 1
                            ref_box = np.array(d.box)
                            if any(palm.box_iou(ref_box, np.array([qd.box]))[0] > 0.5 for qd in q):
                                hit += 1
                finally:
                    m.close()
                out.append({
                    "model": pname, "against": model_name("palm", c, "fp32"),
                    "frames": total, "recall_vs_fp32": round(hit / total, 4) if total else None,
                })  # fmt: skip
    return out


class ReferenceRunner:
    """MediaPipe legacy Hands (complexity 0 and 1) on the same frames, in a subprocess.

    ``run_round()`` runs each complexity once; the tracker benchmark calls it after each of
    its own rounds, so every MediaPipe round is measured right next to the tracker round it
    is compared with (the load of a shared machine changes within a minute). ``result()``
    reports the median MediaPipe time and, per variant, the median of the per-round ratios.
    """

    def __init__(self, reference_python: str, frames: list[np.ndarray]) -> None:
        self.python = Path(reference_python)
        if not self.python.exists():
            raise FlexscoreError(f"--reference-python {self.python} does not exist (make {REFERENCE_HINT})")
        try:
            probe = subprocess.run(
                [str(self.python), "-c", "import mediapipe, numpy; print(mediapipe.__version__)"],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
        except OSError as exc:
            raise FlexscoreError(f"cannot run --reference-python {self.python}: {exc.strerror}") from None
        if probe.returncode != 0:
            raise FlexscoreError(
                f"the MediaPipe comparison needs mediapipe, which --reference-python {self.python} "
                f"cannot import: give the python of {REFERENCE_HINT}; or leave out "
                "--reference-python (every other section runs without it)"
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="flexscore-bench-")
        self._npy = Path(self._tmp.name) / "frames.npy"
        np.save(self._npy, np.stack(frames))
        self.per_round: dict[int, list[float]] = {0: [], 1: []}
        self.per_round_mean: dict[int, list[float]] = {0: [], 1: []}
        self.version: str | None = None

    def run_round(self) -> None:
        for c in (0, 1):
            out = Path(self._tmp.name) / f"ref{c}.json"
            cmd = [str(self.python), str(REFERENCE_SCRIPT), "--frames", str(self._npy),
                   "--complexity", str(c), "--out", str(out)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
            if proc.returncode != 0:
                raise FlexscoreError(
                    f"reference run failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
                )
            data = json.loads(out.read_text())
            self.per_round[c].append(float(data["median_ms"]))  # per-frame median, as ours
            self.per_round_mean[c].append(float(data["mean_ms"]))
            self.version = data.get("mediapipe_version", self.version)

    def close(self) -> None:
        self._tmp.cleanup()

    def result(self, ours: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"python": str(self.python), "complexity": {},
                               "mediapipe_version": self.version}  # fmt: skip
        multi = len({row["threads"] for row in ours}) > 1
        for c, complexity in ((0, "lite"), (1, "full")):
            mp = self.per_round[c]
            entry: dict[str, Any] = {
                "mediapipe_ms_per_frame": round(_median_of_rounds(mp), 3), "rounds": mp,
            }  # fmt: skip
            for row in ours:
                if row["complexity"] != complexity:
                    continue
                key = f"ratio_{row['precision']}" + (f"_{row['threads']}t" if multi else "")
                paired = [a / b for a, b in zip(row["rounds_ms_per_frame"], mp, strict=False) if b > 0]
                entry[key] = round(_median_of_rounds(paired), 3)
                entry[key.replace("ratio_", "round_ratios_")] = [round(r, 3) for r in paired]
                # the same on mean frame times (palm-detector and precise-model frames count)
                means = zip(row["rounds_mean_ms_per_frame"], self.per_round_mean[c], strict=False)
                entry[key.replace("ratio_", "mean_ratio_")] = round(
                    _median_of_rounds([a / b for a, b in means if b > 0]), 3
                )
            out["complexity"][str(c)] = entry
        return out


def run_bench(
    cfg: Config,
    *,
    video: str,
    max_frames: int = 300,
    rounds: int = 3,
    threads: int | list[int] = 2,
    reference_python: str | None = None,
    sections: set[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the selected benchmark sections and return one report dict."""
    sections = sections or set(ALL_SECTIONS)
    unknown = sections - set(ALL_SECTIONS)
    if unknown:
        raise FlexscoreError(f"unknown bench section(s): {', '.join(sorted(unknown))}")
    from device.video import probe_video

    info = probe_video(video)
    frames = [rgb for _, _, rgb in read_frames(video, max_frames=max_frames)]
    models_dir = cfg.models.resolved_dir()
    variants = available_variants(models_dir)
    if not variants:
        raise ModelError(f"no complete palm+landmark model pair in {models_dir}")
    report: dict[str, Any] = {
        "machine": machine_info(),
        "video": {
            "path": str(video),
            "frames": len(frames),
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
        },
        "rounds": rounds,
        "command": "flexscore bench",
    }
    steps: list[tuple[str, Callable[[], Any]]] = []
    if "models" in sections:
        steps.append(("models", lambda: bench_models(models_dir, frames, rounds)))
    reference = None
    if "reference" in sections and reference_python:
        reference = ReferenceRunner(reference_python, frames)
    if "tracker" in sections or "reference" in sections:
        between = reference.run_round if reference is not None else None
        steps.append(("tracker", lambda: bench_tracker(
            cfg, variants, frames, info.fps, rounds, threads, between)))  # fmt: skip
    if "accuracy" in sections:
        steps.append(("int8_accuracy", lambda: bench_int8_accuracy(cfg, variants, frames, info.fps)))
    if reference is not None:
        steps.append(("reference", lambda: reference.result(report.get("tracker", []))))
    if "scoring" in sections:
        steps.append(("scoring", _bench_scoring))
    if "daemon" in sections:
        steps.append(("daemon", lambda: _bench_daemon(cfg, video)))
    try:
        for name, fn in steps:
            log.info("bench: %s", name)
            t0 = time.perf_counter()
            report[name] = fn()
            log.info("bench: %s done in %.1f s", name, time.perf_counter() - t0)
    finally:
        if reference is not None:
            reference.close()
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def _bench_scoring() -> Any:
    from device.tools.scoring_bench import bench_scoring

    return bench_scoring()


def _bench_daemon(cfg: Config, video: str) -> Any:
    try:
        import device.web.live  # noqa: F401  (the loop's live view: the ``device`` extra)
    except ImportError as exc:
        return {"skipped": f"the daemon's parts are not installed ({exc})"}
    from device.tools.loop_bench import bench_tracking_loop

    return bench_tracking_loop(cfg, video)


def format_report(r: dict[str, Any]) -> str:
    """Human-readable tables of a report."""
    lines = [
        f"flexscore bench — {r['machine']['machine']}, {r['machine']['cpus']} CPUs, "
        f"Python {r['machine']['python']}; video {Path(r['video']['path']).name} "
        f"({r['video']['frames']} frames, {r['video']['width']}×{r['video']['height']}); "
        f"median of {r['rounds']} interleaved rounds; load average "
        f"{r['machine'].get('loadavg_start', ['?'])[0]} → {r['machine'].get('loadavg_end', ['?'])[0]}",
    ]
    if "models" in r:
        lines += ["", "model                               bytes    invoke 1t   invoke 2t"]
        for m in r["models"]:
            lines.append(
                f"{m['model']:<32} {m['bytes']:>9,}  {m['invoke_ms_1t']:8.2f} ms {m['invoke_ms_2t']:8.2f} ms"
            )
    if "tracker" in r:
        lines += [
            "",
            "tracker (median per frame)  thr  palm              ms/frame  invoke  python  "
            "python/invoke  detector runs  precise",
        ]
        for t in r["tracker"]:
            lines.append(
                f"{t['complexity']:<5} {t['precision']:<21} {t['threads']:>2}  {t['palm']:<16}"
                f" {t['ms_per_frame']:8.2f} {t['invoke_ms_per_frame']:7.2f} "
                f"{t['python_ms_per_frame']:7.2f}  {t['python_overhead']:12.1%}"
                f"  {t['detector_runs']:>6}/{t['frames']}  {t['precise_share']:8.1%}"
            )
        lines += [
            "",
            "the tracker's own work replayed without the models (same frames, same ROIs):",
            "                                      back to back  ÷ invoke   after a "
            f"{PAUSE_S * 1e3:g} ms idle pause",
        ]
        for t in r["tracker"]:
            lines.append(
                f"{t['complexity']:<5} {t['precision']:<21} {t['threads']:>2}"
                f"          {t['own_work_ms_per_frame']:7.2f} ms {t['own_work_overhead']:8.1%}"
                f"   {t['own_work_after_pause_ms_per_frame']:7.2f} ms"
            )
    if "int8_accuracy" in r:
        lines += ["", "quantized vs fp32 (same inputs)"]
        for a in r["int8_accuracy"]:
            if "recall_vs_fp32" in a:
                lines.append(f"  {a['model']:<34} palm recall {a['recall_vs_fp32']} on {a['frames']} palms")
            else:
                lines.append(
                    f"  {a['model']:<34} landmark error median {a['median_err_pct']} %, "
                    f"p95 {a['p95_err_pct']} % of hand size ({a['frames']} frames)"
                )
    if "reference" in r:
        ref = r["reference"]
        lines += ["", f"MediaPipe {ref.get('mediapipe_version')} legacy Hands, same frames:"]
        for c, e in ref["complexity"].items():
            ratios = ", ".join(f"{k[6:]} {v:.2f}×" for k, v in e.items() if k.startswith("ratio_"))
            means = ", ".join(f"{k[11:]} {v:.2f}×" for k, v in e.items() if k.startswith("mean_ratio_"))
            lines.append(
                f"  complexity {c}: {e['mediapipe_ms_per_frame']:.2f} ms/frame; ours/MediaPipe: {ratios}"
            )
            lines.append(f"    on mean frame times: {means}")
    for key in ("scoring", "daemon"):
        if key in r:
            lines += ["", f"{key}: {json.dumps(r[key])}"]
    return "\n".join(lines)
