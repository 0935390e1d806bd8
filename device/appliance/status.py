"""What the appliance reports about itself: the live status snapshot and the status page's
system information (the types every front end — web page, control socket, fleet — reads)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict

log = logging.getLogger(__name__)


class StatusSnapshot(TypedDict, total=False):
    """``WebServices.status()``. Required: ``state``, ``camera``, ``fps``.

    Keys:
        state: recorder state (idle, countdown, recording, scoring, result, rejected,
            cancelled, error).
        remaining_s: seconds left in the countdown or recording, else None.
        camera: camera watchdog state (starting, ok, lost, restarting, stopped).
        fps: frames per second the tracker is processing now.
        hand_in_view: the patient's side ("left" / "right") of the hand tracked in the latest
            frame (from the model's handedness and the camera's mirroring), or None.
        patient: code of the patient of the current (or last) trial, or None.
        side: affected side of the current (or last) trial, or None.
        trial_seq: the recorder's trial counter, or None.
        reasons: reason codes of the last outcome (rejected / cancelled / error).
        reference: True when the current (or last) trial records the unaffected hand
            (a reference trial); ``side`` is then that hand's side.
        guidance: what the hand in view needs, ``{"code", "message"}`` (code ``ready`` when
            nothing; see device/trial/guidance.py), or None before the first frame.
        phase: "waiting" / "counting" (countdown: held for the hand / counting), "close" /
            "open" (recording), else None.
        prompt: the one sentence the page shows for guidance, phase or outcome, or None.
        items: the assessment items (device/items keys) the current (or last, or next)
            trial is scored for.
        unit_patient: code of the patient the unit is bound to (button trials), or None.
        anonymous: True when the current (or last) trial has no patient (anonymous screening).
        screening: True when the unit is set up for anonymous screening (``[unit] anonymous``).
        safe: present and True in shutdown-safe idle (after a long press).
        fleet: only with ``[fleet]`` configured: :class:`device.fleet.FleetStatus` —
            ``state`` (waiting for broker, connecting, connected, auth failed, not
            authorized, stopped), ``queued`` (messages not yet acknowledged), ``detail``.
    """

    state: str
    remaining_s: float | None
    camera: str
    fps: float
    hand_in_view: str | None
    patient: str | None
    side: str | None
    trial_seq: int | None
    reasons: list[str]
    reference: bool
    guidance: dict[str, str] | None
    phase: str | None
    prompt: str | None
    items: list[str]
    unit_patient: str | None
    anonymous: bool
    screening: bool
    safe: bool
    fleet: dict[str, Any]


@dataclass(frozen=True)
class JpegFrame:
    """One encoded live-view frame (skeleton already drawn). ``seq`` grows by one per frame."""

    seq: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ModelInfo:
    """One model file as the status page lists it."""

    name: str
    kind: str  # palm, landmark, scorer, …
    variant: str  # e.g. "lite int8"
    sha256: str  # first 12 hex digits
    size_bytes: int
    in_use: bool = False


@dataclass(frozen=True)
class SystemInfo:
    """The status page: what runs, how long, and how much room is left."""

    software_version: str
    uptime_s: float
    disk_path: str
    disk_total_bytes: int
    disk_free_bytes: int
    models: tuple[ModelInfo, ...] = ()
    camera: dict[str, str] = field(default_factory=dict)  # backend, device, resolution, …
    settings: dict[str, str] = field(default_factory=dict)  # read-only config shown to a clinician


def models_from_manifest(models_dir: str | Path, in_use: Iterable[str] = ()) -> tuple[ModelInfo, ...]:
    """The models listed in ``models_dir/manifest.json`` (empty when there is none)."""
    used = set(in_use)
    path = Path(models_dir) / "manifest.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("no readable model manifest at %s", path)
        return ()
    out = []
    for name, entry in sorted((doc.get("models") or {}).items()):
        if not isinstance(entry, dict):
            continue
        variant = " ".join(str(entry[k]) for k in ("complexity", "precision") if entry.get(k))
        out.append(
            ModelInfo(
                name=name,
                kind=str(entry.get("kind", "")),
                variant=variant,
                sha256=str(entry.get("sha256", ""))[:12],
                size_bytes=int(entry.get("bytes", 0) or 0),
                in_use=name in used,
            )
        )
    return tuple(out)


def disk_usage(path: str | Path) -> tuple[int, int]:
    """(total, free) bytes of the file system holding ``path`` (0, 0 if unknown)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return 0, 0
    return usage.total, usage.free


def software_version() -> str:
    """The installed flexscore version (the package's own when not installed)."""
    try:
        return metadata.version("flexscore")
    except metadata.PackageNotFoundError:
        from device import __version__

        return __version__
