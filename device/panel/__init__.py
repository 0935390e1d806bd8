"""Front panel (gpiozero): button, single or RGB LED, optional buzzer; mock pins off the Pi."""

from __future__ import annotations

from device.panel.panel import FROM_RECORDER, Panel, result_score
from device.panel.patterns import PATTERNS, PanelState, Pattern, pattern_for
from device.panel.voice import PROMPTS, Voice, make_voice

__all__ = [
    "FROM_RECORDER", "PATTERNS", "PROMPTS", "Panel", "PanelState", "Pattern", "Voice", "make_voice",
    "pattern_for", "result_score",
]  # fmt: skip
