"""Flexscore: Fugl-Meyer "mass finger flexion" scoring appliance (import package ``device``)."""

__version__ = "0.1.0"
