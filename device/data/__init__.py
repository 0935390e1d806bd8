"""Bundled sample data (see NOTICE.md)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
SAMPLE_VIDEO = DATA_DIR / "sample_open_fist_open.mp4"
