"""Front panel (gpiozero): button, single or RGB LED, optional buzzer; mock pins off the Pi."""

from __future__ import annotations

from device.panel.panel import FROM_RECORDER, Panel, result_score
from device.panel.patterns import PATTERNS, PanelState, Pattern, pattern_for

__all__ = ["FROM_RECORDER", "PATTERNS", "Panel", "PanelState", "Pattern", "pattern_for", "result_score"]
