"""Track a whole video file: the library behind ``flexscore track``.

Output JSON (``flexscore track`` format, also read by ``flexscore score --landmarks``)::

    {"width": W, "height": H, "fps": F, "frames": [
        {"index": i, "t": seconds, "detected": bool, "presence": p, "handedness": "Left"|"Right"|null,
         "landmarks": [[x, y, z] × 21] | null, "world": [[x, y, z] × 21] | null}, ...]}

x, y in pixels of the video frame, z relative depth on the same scale, MediaPipe joint order;
handedness as the landmark model names it (MediaPipe convention: it assumes a mirrored image).
``world`` is the landmark model's world output for the same hand: metres in the hand's own
frame (origin near the hand's centre), rounded to 10 µm; null when no hand was tracked.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from device.errors import InputError, VideoError
from device.trial.io import world_json
from device.video import VideoInfo, probe_video, read_frames
from device.vision.draw import draw_observation
from device.vision.tracker import HandTracker, check_frame, check_frame_size
from device.vision.types import HandObservation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackResult:
    info: VideoInfo
    observations: list[HandObservation]

    def to_json(self) -> dict[str, Any]:
        return {
            "width": self.info.width,
            "height": self.info.height,
            "fps": self.info.fps,
            "frames": [observation_json(o) for o in self.observations],
        }

    @property
    def detection_rate(self) -> float:
        n = len(self.observations)
        return sum(o.detected for o in self.observations) / n if n else 0.0


def observation_json(o: HandObservation) -> dict[str, Any]:
    lm = None if o.landmarks is None else np.round(o.landmarks.astype(float), 3).tolist()
    world = world_json(o.world_landmarks) if o.detected and o.landmarks is not None else None
    return {
        "index": o.frame_index,
        "t": round(o.t, 6),
        "detected": o.detected,
        "presence": round(float(o.presence), 4),
        "handedness": o.handedness,
        "landmarks": lm,
        "world": world,
    }


def is_grayscale(rgb: np.ndarray, tolerance: int = 3) -> bool:
    """True when an RGB frame carries no colour (channels equal up to codec rounding)."""
    small = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)].astype(np.int16)
    return bool(
        np.abs(small[..., 0] - small[..., 1]).max() <= tolerance
        and np.abs(small[..., 1] - small[..., 2]).max() <= tolerance
    )


def transform_frame(rgb: np.ndarray, flip: bool = False, rotate: int = 0) -> np.ndarray:
    """Mirror left–right and/or rotate clockwise by 0/90/180/270 degrees."""
    if flip:
        rgb = rgb[:, ::-1]
    k = {
        0: None,
        90: cv2.ROTATE_90_CLOCKWISE,
        180: cv2.ROTATE_180,
        270: cv2.ROTATE_90_COUNTERCLOCKWISE,
    }
    if rotate not in k:
        raise VideoError(f"rotation must be 0, 90, 180 or 270 degrees, got {rotate}")
    code = k[rotate]
    out = rgb if code is None else cv2.rotate(rgb, code)
    return np.ascontiguousarray(out)


def track_frames(
    tracker: HandTracker,
    frames: Iterator[tuple[int, float, np.ndarray]],
    on_frame: Callable[[np.ndarray, HandObservation], None] | None = None,
) -> list[HandObservation]:
    """Run the tracker over frames; one observation (best hand or a miss) per frame."""
    tracker.reset()
    out: list[HandObservation] = []
    for index, t, rgb in frames:
        check_frame(rgb)
        if index == 0 and is_grayscale(rgb):
            raise VideoError(
                "the video is grayscale (all colour channels equal): the hand models need "
                "colour frames — use a colour camera or recording"
            )
        ob = tracker.process_one(rgb, t)
        ob = HandObservation(**{**ob.__dict__, "frame_index": index})
        out.append(ob)
        if on_frame is not None:
            on_frame(rgb, ob)
    return out


def track_video(
    tracker: HandTracker,
    path: str | Path,
    *,
    overlay: str | Path | None = None,
    flip: bool = False,
    rotate: int = 0,
    progress: bool = False,
) -> TrackResult:
    """Track every frame of a video; optionally write an annotated copy to ``overlay``."""
    info = probe_video(path)
    check_frame_size(info.width, info.height)  # before decoding anything
    if rotate in (90, 270):
        info = VideoInfo(info.path, info.height, info.width, info.fps, info.frame_count)
    writer: cv2.VideoWriter | None = None
    tmp_overlay: Path | None = None
    if overlay is not None:
        overlay = Path(overlay)
        overlay.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=overlay.suffix or ".mp4", dir=overlay.parent)
        os.close(fd)
        tmp_overlay = Path(name)
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        writer = cv2.VideoWriter(str(tmp_overlay), fourcc, info.fps, (info.width, info.height))
        if not writer.isOpened():
            tmp_overlay.unlink(missing_ok=True)
            raise VideoError(f"cannot write overlay video {overlay}")

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.frame_count or None, unit="frame", desc=Path(path).name, leave=False)

    def on_frame(rgb: np.ndarray, ob: HandObservation) -> None:
        if writer is not None:
            canvas = draw_observation(rgb.copy(), ob)
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        if bar is not None:
            bar.update(1)

    frames = (
        (i, t, transform_frame(rgb, flip, rotate) if (flip or rotate) else rgb)
        for i, t, rgb in read_frames(path)
    )
    try:
        observations = track_frames(tracker, frames, on_frame)
    except BaseException:
        if tmp_overlay is not None:
            tmp_overlay.unlink(missing_ok=True)
        raise
    finally:
        if writer is not None:
            writer.release()
        if bar is not None:
            bar.close()
    if tmp_overlay is not None and overlay is not None:
        os.replace(tmp_overlay, overlay)
    return TrackResult(info, observations)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON next to ``path`` and rename over it: never a half-written file.
    :class:`InputError` naming the path when it cannot be written."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".json", dir=p.parent)
    except OSError as exc:
        raise InputError(f"cannot write {p}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {p}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
