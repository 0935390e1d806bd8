"""Frozen, validated configuration loaded from TOML.

Each section is a frozen dataclass; unknown keys are rejected with the TOML path of the key,
and values are checked for type and range (``__post_init__``). ``flexscore check-config FILE``
runs :func:`load_config` and reports the first problem.

Adding a section: write a frozen dataclass with defaults, validate in ``__post_init__`` by
raising :class:`ConfigError`, and add a field of that type to :class:`Config`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from device.errors import ConfigError

T = TypeVar("T")

PACKAGE_DIR = Path(__file__).resolve().parent
# Models live at the repository top level (``models/``) in a checkout; an installed wheel
# finds them through FLEXSCORE_MODELS_DIR or the config.
DEFAULT_MODELS_DIR = PACKAGE_DIR.parent / "models"


def _check(cond: bool, path: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{path}': {message}")


@dataclass(frozen=True)
class ModelsConfig:
    """Which hand models to run and where they are."""

    dir: str = ""  # empty: FLEXSCORE_MODELS_DIR or the repository's models/
    complexity: Literal["lite", "full"] = "lite"
    precision: Literal["int8", "fp32"] = "fp32"
    threads: int = 2

    def __post_init__(self) -> None:
        _check(self.complexity in ("lite", "full"), "models.complexity", "must be 'lite' or 'full'")
        _check(self.precision in ("int8", "fp32"), "models.precision", "must be 'int8' or 'fp32'")
        _check(1 <= self.threads <= 16, "models.threads", "must be between 1 and 16")

    def resolved_dir(self) -> Path:
        if self.dir:
            return Path(self.dir).expanduser()
        env = os.environ.get("FLEXSCORE_MODELS_DIR")
        return Path(env) if env else DEFAULT_MODELS_DIR


@dataclass(frozen=True)
class FilterConfig:
    """One Euro filter on landmark pixels (Casiez et al. 2012)."""

    enabled: bool = True
    min_cutoff: float = 1.0  # Hz: lower = smoother when still
    beta: float = 0.05  # speed coefficient: higher = less lag when moving
    d_cutoff: float = 1.0  # Hz, for the derivative

    def __post_init__(self) -> None:
        _check(self.min_cutoff > 0, "tracker.filter.min_cutoff", "must be > 0")
        _check(self.beta >= 0, "tracker.filter.beta", "must be >= 0")
        _check(self.d_cutoff > 0, "tracker.filter.d_cutoff", "must be > 0")


@dataclass(frozen=True)
class TrackerConfig:
    """Palm detection + landmark tracking parameters (MediaPipe defaults)."""

    max_hands: int = 1
    min_detection_score: float = 0.5
    min_presence: float = 0.5
    nms_iou: float = 0.3
    mirrored: bool = False  # True when the camera delivers a selfie (mirrored) view
    filter: FilterConfig = field(default_factory=FilterConfig)

    def __post_init__(self) -> None:
        _check(self.max_hands in (1, 2), "tracker.max_hands", "must be 1 or 2")
        _check(0 < self.min_detection_score < 1, "tracker.min_detection_score", "must be in (0, 1)")
        _check(0 < self.min_presence < 1, "tracker.min_presence", "must be in (0, 1)")
        _check(0 < self.nms_iou < 1, "tracker.nms_iou", "must be in (0, 1)")


@dataclass(frozen=True)
class Config:
    """The whole appliance configuration."""

    models: ModelsConfig = field(default_factory=ModelsConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)


# --------------------------------------------------------------------------- loading


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        _check(isinstance(value, dict), path, "must be a table")
        return _build(tp, value, path)
    if origin is Literal:
        allowed = get_args(tp)
        _check(value in allowed, path, f"must be one of {', '.join(map(repr, allowed))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"config key '{path}': invalid value")
    if origin is tuple:
        _check(isinstance(value, list | tuple), path, "must be an array")
        (item_tp, *_rest) = get_args(tp)
        return tuple(_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        _check(isinstance(value, bool), path, "must be true or false")
        return value
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), path, "must be an integer")
        return value
    if tp is float:
        _check(
            isinstance(value, int | float) and not isinstance(value, bool), path, "must be a number"
        )
        return float(value)
    if tp is str:
        _check(isinstance(value, str), path, "must be a string")
        return value
    raise ConfigError(f"config key '{path}': unsupported type {tp!r}")  # pragma: no cover


def _build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"[{prefix}]" if prefix else "the top level"
        raise ConfigError(
            f"unknown config key(s) {', '.join(repr(k) for k in unknown)} in {where}; "
            f"valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        kwargs[key] = _convert(value, hints[key], path)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(f"config section '{prefix or 'top'}': {exc}") from exc


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build a validated :class:`Config` from a plain mapping (parsed TOML)."""
    return _build(Config, data)


def load_config(path: str | Path | None) -> Config:
    """Load and validate a TOML config file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def replace(cfg: T, **changes: Any) -> T:
    """``dataclasses.replace`` that re-runs validation."""
    return dataclasses.replace(cfg, **changes)  # type: ignore[type-var]
