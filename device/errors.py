"""The one exception hierarchy of Flexscore.

Every error the product raises on purpose is a :class:`FlexscoreError`; subclasses also
inherit a builtin so callers that only know the builtin still catch them (gpiozero's habit).
The message is meant for a person: it names the file, key or value that is wrong.
"""

from __future__ import annotations


class FlexscoreError(Exception):
    """Root of every error Flexscore raises on purpose."""


class ConfigError(FlexscoreError, ValueError):
    """A configuration file or value is invalid."""


class ModelError(FlexscoreError, RuntimeError):
    """A model file is missing, corrupt, or does not match the manifest."""


class VideoError(FlexscoreError, OSError):
    """A video or image cannot be opened or decoded."""


class InputError(FlexscoreError, ValueError):
    """An input array or document has the wrong shape, type or values."""


class CameraError(FlexscoreError, OSError):
    """A camera backend failed to open or stopped delivering frames."""


class StoreError(FlexscoreError, OSError):
    """The trial store cannot be opened, migrated or written."""


class ScoringError(FlexscoreError, RuntimeError):
    """A trial cannot be scored because of a fault (not a quality rejection)."""
