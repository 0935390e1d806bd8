"""Words the pages show for states, scores and quality metrics (one place, for Python and JS)."""

from __future__ import annotations

# state → (headline, instruction)
STATE_TEXT: dict[str, tuple[str, str]] = {
    "idle": ("Ready", "Enter the patient code, choose the affected side and press Start."),
    "countdown": ("Get ready", "Hold the open hand in view, palm towards the camera."),
    "recording": ("Recording", "Close all fingers into a fist as far as possible, then open again."),
    "scoring": ("Scoring…", "Please wait a moment."),
    "result": ("Done", "The result is ready."),
    "rejected": ("Not scorable", "The trial could not be scored. See why and try again."),
    "cancelled": ("Cancelled", "The trial was cancelled."),
    "error": ("Error", "Something went wrong while scoring. Try again."),
}
CAMERA_TEXT = {
    "ok": "Camera OK",
    "starting": "Camera starting",
    "lost": "Camera lost",
    "restarting": "Camera restarting",
    "stopped": "Camera stopped",
}
HAND_TEXT: dict[str | None, str] = {
    "left": "left hand in view",
    "right": "right hand in view",
    None: "no hand in view",
}
QUALITY_TEXT: dict[str, tuple[str, str]] = {
    # metric → (label, unit or format hint)
    "frames": ("Frames recorded", ""),
    "duration_s": ("Recording length", "s"),
    "presence_share": ("Hand visible", "%"),
    "hand_size_px": ("Hand size (median)", "px"),
    "edge_cut_share": ("Frames with the hand at the edge", "%"),
    "seen_side": ("Hand seen", ""),
    "seen_side_share": ("Frames showing that hand", "%"),
    "side_share": ("Frames showing the assessed side", "%"),
}


def quality_rows(quality: dict[str, object] | None) -> list[tuple[str, str]]:
    """(label, value) rows of a quality report for the result page."""
    rows: list[tuple[str, str]] = []
    for key, (label, unit) in QUALITY_TEXT.items():
        if not quality or key not in quality or quality[key] is None:
            continue
        value = quality[key]
        if unit == "%" and isinstance(value, int | float):
            text = f"{float(value):.0%}"
        elif isinstance(value, float):
            text = f"{value:g} {unit}".strip()
        else:
            text = f"{value} {unit}".strip()
        rows.append((label, text))
    return rows
