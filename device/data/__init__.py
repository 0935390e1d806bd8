"""Bundled sample data (see NOTICE.md)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
SAMPLE_VIDEO = DATA_DIR / "sample_open_fist_open.mp4"
# The clip is a selfie (mirrored) webcam view: a right hand that the hand model, which
# assumes mirrored input, labels "Right" (see NOTICE.md). The demo sets tracker.mirrored.
SAMPLE_VIDEO_MIRRORED = True
