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
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from device.errors import ConfigError

T = TypeVar("T")

PACKAGE_DIR = Path(__file__).resolve().parent
# The shipped models: the repository's top-level ``models/``, reached through the symlink
# ``device/models`` in a checkout and packaged as ``device/models`` in the wheel (pyproject's
# package-data), so an installed package finds them too. FLEXSCORE_MODELS_DIR or models.dir
# point elsewhere.
DEFAULT_MODELS_DIR = PACKAGE_DIR / "models"


def _check(cond: bool, path: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"config key '{path}': {message}")


# models.palm_precision = "auto": the palm variant run with each landmark precision. The
# static-int8 palm loses recall against fp32 (docs/MODELS.md); the weight-only int8 palm keeps
# it and is as small, and the detector only runs while no hand is tracked.
PALM_PRECISION_AUTO = {"int8": "int8_weight_only", "fp32": "fp32"}


@dataclass(frozen=True)
class ModelsConfig:
    """Which hand models to run and where they are."""

    dir: str = ""  # empty: FLEXSCORE_MODELS_DIR or the shipped models (DEFAULT_MODELS_DIR)
    complexity: Literal["lite", "full"] = "lite"
    precision: Literal["int8", "fp32"] = "int8"  # of the landmark model (and the palm: "auto")
    # The palm detector's own variant; "auto" follows ``precision`` (see PALM_PRECISION_AUTO).
    palm_precision: Literal["auto", "int8", "int8_weight_only", "fp32"] = "auto"
    threads: int = 2

    def __post_init__(self) -> None:
        _check(self.complexity in ("lite", "full"), "models.complexity", "must be 'lite' or 'full'")
        _check(self.precision in ("int8", "fp32"), "models.precision", "must be 'int8' or 'fp32'")
        _check(
            self.palm_precision in ("auto", "int8", "int8_weight_only", "fp32"),
            "models.palm_precision",
            "must be 'auto', 'int8', 'int8_weight_only' or 'fp32'",
        )
        _check(1 <= self.threads <= 16, "models.threads", "must be between 1 and 16")

    def resolved_palm_precision(self) -> str:
        """The palm detector variant actually run ("auto" resolved)."""
        if self.palm_precision != "auto":
            return self.palm_precision
        return PALM_PRECISION_AUTO[self.precision]

    def model_names(self) -> tuple[str, str]:
        """Manifest keys of the (palm, landmark) models this config runs."""
        return (
            f"palm_detection_{self.complexity}_{self.resolved_palm_precision()}",
            f"hand_landmark_{self.complexity}_{self.precision}",
        )

    def resolved_dir(self) -> Path:
        if self.dir:
            return Path(self.dir).expanduser()
        env = os.environ.get("FLEXSCORE_MODELS_DIR")
        return Path(env) if env else DEFAULT_MODELS_DIR


@dataclass(frozen=True)
class FilterConfig:
    """One Euro filter on landmark pixels (Casiez et al. 2012)."""

    # Defaults tuned offline on the unfiltered tracker output of the six shared videos
    # (scripts/eval_tracker.py --filter-grid, docs/TRACKER.md): against the former 1.0/10/1.0,
    # less lag on fast motion and no more jitter (a quicker speed estimate opens the cutoff
    # sooner; a lower floor keeps a still hand as still).
    enabled: bool = True
    min_cutoff: float = 0.3  # Hz: lower = smoother when still
    beta: float = 10.0  # per hand-size/s: higher = less lag when moving
    d_cutoff: float = 2.0  # Hz, for the speed estimate: higher = reacts sooner to motion

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
    # With int8 landmarks: frames where the hand turns faster than ``precise_turn_deg`` per
    # frame, or the last fit's presence was below ``precise_below_presence``, run the
    # float-compute (weight-only int8) landmark model instead. See docs/TRACKER.md.
    precise_fallback: bool = True
    precise_turn_deg: float = 5.0
    precise_below_presence: float = 0.9
    filter: FilterConfig = field(default_factory=FilterConfig)

    def __post_init__(self) -> None:
        _check(self.max_hands in (1, 2), "tracker.max_hands", "must be 1 or 2")
        _check(0 < self.precise_turn_deg <= 180, "tracker.precise_turn_deg", "must be in (0, 180]")
        _check(
            0 <= self.precise_below_presence <= 1,
            "tracker.precise_below_presence",
            "must be in [0, 1]",
        )
        _check(0 < self.min_detection_score < 1, "tracker.min_detection_score", "must be in (0, 1)")
        _check(0 < self.min_presence < 1, "tracker.min_presence", "must be in (0, 1)")
        _check(0 < self.nms_iou < 1, "tracker.nms_iou", "must be in (0, 1)")


@dataclass(frozen=True)
class TrialConfig:
    """One recording of the mass-flexion item and the quality gates it must pass."""

    duration_s: float = 6.0
    side: Literal["left", "right"] | None = None  # affected side; None: not checked
    min_presence_share: float = 0.8  # hand tracked on at least this share of frames
    min_hand_px: float = 40.0  # median hand size (bounding-box long side) in pixels
    edge_margin_px: float = 2.0  # a landmark this close to / beyond the border is "cut"
    max_edge_cut_share: float = 0.25  # at most this share of tracked frames cut by the edge
    min_side_share: float = 0.6  # share of labelled frames naming the configured side
    # A recording shorter than this cannot show a closing movement from start to end
    # (a full open → fist → open takes ≈ 1.5–3 s on the real clips): "stopped too early".
    # A site that records shorter trials (``duration_s``) gets 90 % of its own length.
    min_duration_s: float = 2.5

    @property
    def stopped_early_s(self) -> float:
        """Recordings shorter than this are "stopped too early"."""
        return min(self.min_duration_s, 0.9 * self.duration_s)

    # Frames that stop arriving for longer than this during a recording: a camera fault.
    max_frame_gap_s: float = 1.0
    # Palm seen edge-on (|palm normal · view axis| below ``edge_on_normal``) in more than this
    # share of the tracked frames: the fingers cannot be seen.
    max_edge_on_share: float = 0.6
    edge_on_normal: float = 0.3
    # The assessment item a recording is scored for (device.items): "mass_flexion",
    # "mass_extension", or "all" (the combined protocol "make a fist, then open your hand
    # fully", which gives every item from one recording).
    item: str = "mass_flexion"
    # Live guidance (device/trial/guidance.py, issue 18). The countdown runs only while a
    # usable hand is in view; with none, it waits up to this long after its own 3 s, then the
    # trial ends as rejected ("not started") with what was wrong.
    hand_wait_s: float = 10.0
    # While recording: frames keep arriving but show no hand for this long → the recording
    # stops early, rejected with "hand_lost" (or "no_hand" if it never showed one).
    hand_lost_s: float = 1.0

    def __post_init__(self) -> None:
        from device.items.registry import DEFAULT_ITEM, item_keys  # late: items import scoring

        known = item_keys()
        _check(
            self.item in ("all", DEFAULT_ITEM) or self.item in known,
            "trial.item",
            f"must be one of {', '.join(repr(k) for k in (*known, 'all'))}, got {self.item!r}",
        )
        _check(1.0 <= self.duration_s <= 60.0, "trial.duration_s", "must be in [1, 60] s")
        _check(0.0 <= self.hand_wait_s <= 120.0, "trial.hand_wait_s", "must be in [0, 120] s")
        _check(0.1 <= self.hand_lost_s <= 2.0, "trial.hand_lost_s", "must be in [0.1, 2] s")
        _check(0.0 <= self.min_duration_s <= 60.0, "trial.min_duration_s", "must be in [0, 60] s")
        _check(0.05 <= self.max_frame_gap_s <= 60.0, "trial.max_frame_gap_s", "must be in [0.05, 60] s")
        _check(0 < self.max_edge_on_share <= 1, "trial.max_edge_on_share", "must be in (0, 1]")
        _check(0 <= self.edge_on_normal < 1, "trial.edge_on_normal", "must be in [0, 1)")
        _check(self.side in (None, "left", "right"), "trial.side", "must be 'left' or 'right'")
        _check(0 < self.min_presence_share <= 1, "trial.min_presence_share", "must be in (0, 1]")
        _check(self.min_hand_px >= 0, "trial.min_hand_px", "must be >= 0")
        _check(self.edge_margin_px >= 0, "trial.edge_margin_px", "must be >= 0")
        _check(0 <= self.max_edge_cut_share <= 1, "trial.max_edge_cut_share", "must be in [0, 1]")
        _check(0.5 <= self.min_side_share <= 1, "trial.min_side_share", "must be in [0.5, 1]")


@dataclass(frozen=True)
class ScoringConfig:
    """How the RNN and the range-of-motion rule are combined (device/scoring/decide.py)."""

    use_rnn: bool = True  # False: rule only (every result flagged for review)
    # Score from x, y only (the 2D scorer and the 2D rule) even when the tracker gives z.
    # The default: on real video the 3D scorer, trained on synthetic hands only, misjudges
    # what the 2D scorer, trained also on real hands, gets right (scripts/eval_pipeline.py:
    # 49 of 72 altered real trials right and none wrong without z; 35 right, 13 wrong with
    # z — docs/VALIDATION.md). True: the 3D scorer and rule (better on exact synthetic z).
    use_z: bool = False
    # Score in the hand's own frame (world landmarks → joint angles, the hand RNN) when the
    # trial has world landmarks (the appliance's tracker gives them): the default. False:
    # the image path above for every trial.
    use_world: bool = True
    min_confidence: float = 0.5  # below: not_scorable ("low confidence")
    review_confidence: float = 0.8  # below: scored but flagged for clinician review
    threads: int = 1

    def __post_init__(self) -> None:
        _check(0 <= self.min_confidence < 1, "scoring.min_confidence", "must be in [0, 1)")
        _check(
            self.min_confidence <= self.review_confidence <= 1,
            "scoring.review_confidence",
            "must be in [min_confidence, 1]",
        )
        _check(1 <= self.threads <= 16, "scoring.threads", "must be between 1 and 16")


def scoring_mode(sc: ScoringConfig) -> str:
    """One line for the status page: how trials are scored with this config."""
    if sc.use_world:
        return "hand frame (joint angles from world landmarks, hand scorer); 2D for trials without them"
    return "with z (3D scorer)" if sc.use_z else "from x, y (2D scorer)"


@dataclass(frozen=True)
class CameraConfig:
    """Which camera backend to open (device/camera/) and the watchdog that restarts it."""

    backend: Literal["picamera2", "opencv", "file", "synthetic"] = "file"
    camera_num: int = 0  # picamera2: libcamera camera number
    device: int | str = 0  # opencv: index or /dev path (e.g. /dev/v4l/by-id/...)
    path: str = ""  # file: video path; empty: the bundled demo clip
    loop: bool = True  # file: rewind at the end
    paced: bool = True  # file/synthetic: deliver at the frame rate, not as fast as possible
    width: int = 640
    height: int = 480
    fps: float = 30.0
    stall_timeout_s: float = 3.0  # no frame this long → camera lost, restart
    restart_delay_s: float = 1.0  # first back-off; doubles per failed restart
    max_restart_delay_s: float = 30.0  # cap of the back-off
    max_restarts: int = 5  # restarts allowed per window before waiting the cap
    restart_window_s: float = 300.0

    def __post_init__(self) -> None:
        _check(self.camera_num >= 0, "camera.camera_num", "must be >= 0")
        if isinstance(self.device, int):
            _check(self.device >= 0, "camera.device", "must be an index >= 0 or a /dev path")
        else:
            _check(
                self.device.isdigit() or self.device.startswith("/dev/"),
                "camera.device",
                "must be an index >= 0 or a /dev path",
            )
        _check(16 <= self.width <= 4096, "camera.width", "must be in [16, 4096]")
        _check(16 <= self.height <= 4096, "camera.height", "must be in [16, 4096]")
        _check(1 <= self.fps <= 240, "camera.fps", "must be in [1, 240]")
        _check(self.stall_timeout_s > 0, "camera.stall_timeout_s", "must be > 0")
        _check(self.restart_delay_s >= 0, "camera.restart_delay_s", "must be >= 0")
        _check(
            self.max_restart_delay_s >= self.restart_delay_s,
            "camera.max_restart_delay_s",
            "must be >= restart_delay_s",
        )
        _check(self.max_restarts >= 1, "camera.max_restarts", "must be >= 1")
        _check(self.restart_window_s > 0, "camera.restart_window_s", "must be > 0")


BCM_PINS = range(0, 28)  # GPIO0..GPIO27 on the 40-pin header


@dataclass(frozen=True)
class PanelConfig:
    """Button, LED and buzzer on the GPIO header (BCM numbers; device/panel/)."""

    enabled: bool = True
    button_pin: int | None = 17
    led_pin: int | None = 27  # single LED; ignored when rgb_pins is set
    rgb_pins: tuple[int, ...] = ()  # (red, green, blue) of an RGB LED
    led_active_high: bool = True
    buzzer_pin: int | None = None
    long_press_s: float = 3.0  # hold this long: cancel and go to shutdown-safe idle
    bounce_s: float = 0.05  # button debounce; 0 disables it
    blink_unit_s: float = 1.0  # scales every LED pattern (tests make it small)
    # Spoken prompts through Debian's espeak-ng (device/panel/voice.py, issue 18): off by
    # default; without espeak-ng installed one warning is logged and the kit stays silent.
    voice: bool = False
    voice_language: Literal["en", "de"] = "en"
    voice_speed: int = 150  # words per minute (espeak-ng's default is 175)

    def __post_init__(self) -> None:
        _check(self.voice_language in ("en", "de"), "panel.voice_language", "must be 'en' or 'de'")
        _check(80 <= self.voice_speed <= 300, "panel.voice_speed", "must be in [80, 300] words per minute")
        pins = {
            "panel.button_pin": self.button_pin,
            "panel.led_pin": None if self.rgb_pins else self.led_pin,
            "panel.buzzer_pin": self.buzzer_pin,
        }
        pins.update({f"panel.rgb_pins[{i}]": p for i, p in enumerate(self.rgb_pins)})
        _check(len(self.rgb_pins) in (0, 3), "panel.rgb_pins", "must list 3 pins (r, g, b)")
        seen: dict[int, str] = {}
        for key, pin in pins.items():
            if pin is None:
                continue
            _check(pin in BCM_PINS, key, f"GPIO {pin} is not a BCM pin 0-27")
            _check(pin not in seen, key, f"GPIO {pin} is already used by {seen.get(pin)}")
            seen[pin] = key
        _check(0.2 <= self.long_press_s <= 30, "panel.long_press_s", "must be in [0.2, 30] s")
        _check(0 <= self.bounce_s <= 1, "panel.bounce_s", "must be in [0, 1] s")
        _check(0 < self.blink_unit_s <= 10, "panel.blink_unit_s", "must be in (0, 10]")


PATIENT_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


@dataclass(frozen=True)
class UnitConfig:
    """Whom this unit records for when nobody types a patient code (the button, ``flexscore
    press``, an empty code on the page). A clinician can bind the unit to a patient on the
    page (kept in the store, it wins over ``patient`` here)."""

    patient: str = ""  # pseudonymous code bound at install time; empty: none
    side: Literal["left", "right"] | None = None  # that patient's affected side
    # True: trials without a patient are allowed (anonymous screening; every result and
    # export says so). False: a trial without a patient is refused with how to fix it.
    anonymous: bool = False

    def __post_init__(self) -> None:
        _check(
            self.patient == "" or PATIENT_CODE_RE.fullmatch(self.patient) is not None,
            "unit.patient",
            "must be a pseudonymous code of 1-32 letters, digits, '_', '.', '-'",
        )
        _check(
            not (self.anonymous and self.patient),
            "unit.anonymous",
            "cannot be set together with unit.patient",
        )


@dataclass(frozen=True)
class StoreConfig:
    """Where trials are kept (device/store/): one SQLite file in WAL mode."""

    path: str = ""  # empty: <state dir>/flexscore.db
    busy_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        _check(0 < self.busy_timeout_s <= 60, "store.busy_timeout_s", "must be in (0, 60] s")

    def resolved_path(self, state_dir: str | Path) -> Path:
        """The database file: ``path`` if set, else ``flexscore.db`` in ``state_dir``."""
        return Path(self.path).expanduser() if self.path else Path(state_dir) / "flexscore.db"


WEB_LANGUAGES: tuple[str, ...] = ("auto", "en", "de")  # the page's translations (device/web/i18n.py)


@dataclass(frozen=True)
class WebConfig:
    """The local web page (device/web/), served by waitress from the composition root.

    Reachable from the network (``host`` not loopback) it must be HTTPS (``tls = true``) with a
    clinician password; plain HTTP is for loopback only (docs/RELIABILITY.md, network threat
    model)."""

    host: str = "127.0.0.1"  # anything but loopback needs tls and a clinician password
    port: int = 8080
    max_streams: int = 3  # concurrent MJPEG viewers; the next one gets 503
    stream_fps: float = 15.0  # most frames per second sent to one viewer
    password_hash: str = ""  # werkzeug (scrypt) hash; empty: env FLEXSCORE_PASSWORD, else demo
    secret_key_file: str = ""  # session signing key; empty: <state dir>/web-secret.key
    session_minutes: int = 480  # a login lasts this long
    login_max_attempts: int = 5  # failed logins per client within login_window_s
    login_window_s: float = 300.0
    max_request_kb: int = 64  # larger request bodies get 413
    tls: bool = False  # serve HTTPS (required when host is not loopback)
    cert_file: str = ""  # PEM certificate (chain); empty: a self-signed one in <state dir>/tls/
    key_file: str = ""  # its PEM private key (set both or neither)
    # Host header values accepted (names or addresses, no port); others get 400. Empty: the
    # device's own host names and addresses, localhost, 127.0.0.1 and ::1.
    allowed_hosts: tuple[str, ...] = ()
    request_timeout_s: float = 10.0  # a request must arrive whole within this; a stalled answer is dropped
    idle_timeout_s: float = 30.0  # an idle keep-alive connection is closed after this
    # The page's language: "auto" follows the browser (Accept-Language), else "en" or "de"
    language: str = "auto"

    def __post_init__(self) -> None:
        _check(bool(self.host.strip()), "web.host", "must not be empty")
        _check(1 <= self.port <= 65535, "web.port", "must be in [1, 65535]")
        _check(1 <= self.max_streams <= 32, "web.max_streams", "must be in [1, 32]")
        _check(0.5 <= self.stream_fps <= 60, "web.stream_fps", "must be in [0.5, 60]")
        _check(
            not self.password_hash or self.password_hash.startswith(("scrypt:", "pbkdf2:")),
            "web.password_hash",
            "must be a werkzeug hash ('scrypt:...' or 'pbkdf2:...'), never the password itself",
        )
        _check(1 <= self.session_minutes <= 7 * 24 * 60, "web.session_minutes", "must be in [1, 10080]")
        _check(1 <= self.login_max_attempts <= 100, "web.login_max_attempts", "must be in [1, 100]")
        _check(self.login_window_s > 0, "web.login_window_s", "must be > 0")
        _check(1 <= self.max_request_kb <= 10240, "web.max_request_kb", "must be in [1, 10240]")
        _check(
            self.tls or is_loopback_host(self.host),
            "web.host",
            f"{self.host!r} is reachable from the network: set web.tls = true (HTTPS), or bind to 127.0.0.1",
        )
        _check(
            bool(self.cert_file) == bool(self.key_file),
            "web.cert_file",
            "set both web.cert_file and web.key_file, or neither (a self-signed certificate is made)",
        )
        for i, name in enumerate(self.allowed_hosts):
            _check(
                bool(name.strip()) and all(c not in name for c in " /\\@\t\r\n"),
                f"web.allowed_hosts[{i}]",
                "must be a host name or address without scheme, port or path",
            )
        _check(0.5 <= self.request_timeout_s <= 300, "web.request_timeout_s", "must be in [0.5, 300] s")
        _check(1 <= self.idle_timeout_s <= 3600, "web.idle_timeout_s", "must be in [1, 3600] s")
        _check(
            self.language in WEB_LANGUAGES,
            "web.language",
            f"must be one of {', '.join(WEB_LANGUAGES)} (auto: the browser's language)",
        )


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost`` (the only hosts plain HTTP may bind)."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


UNIT_ID = r"[A-Za-z0-9_-]{1,32}"
FLEET_SCHEMES = {"mqtts": 8883, "mqtt": 1883}


@dataclass(frozen=True)
class FleetConfig:
    """Publishing results and health to the site's MQTT broker (device/fleet/, docs/FLEET.md).
    Off unless the ``[fleet]`` section is present."""

    broker: str = ""  # mqtts://host[:port]; mqtt:// only to a loopback address
    unit_id: str = ""  # [A-Za-z0-9_-]{1,32}: the topics are <topic_prefix>/<unit_id>/...
    username: str = ""  # empty: connect without a user name
    password_file: str = ""  # a file holding the password (never the password in the config)
    ca_file: str = ""  # PEM CA bundle for mqtts; empty: the system's CAs
    topic_prefix: str = "flexscore"
    max_queued: int = 10000  # messages the outbox keeps; beyond, the oldest status ones go
    status_interval_s: float = 60.0  # the retained status is sent this often (and on change)
    reconnect_max_s: float = 60.0  # the reconnect back-off (1 s, doubling) stops growing here

    def __post_init__(self) -> None:
        import re
        from urllib.parse import urlsplit

        _check(bool(self.broker), "fleet.broker", "must be set (mqtts://host:port)")
        try:
            url = urlsplit(self.broker)
            port = url.port
        except ValueError as exc:
            raise ConfigError(f"config key 'fleet.broker': not a valid URL ({exc})") from None
        _check(
            url.scheme in FLEET_SCHEMES,
            "fleet.broker",
            f"must start with mqtts:// (or mqtt:// to a loopback address), got {self.broker!r}",
        )
        _check(bool(url.hostname), "fleet.broker", "names no host")
        _check(
            not (url.username or url.password),
            "fleet.broker",
            "must not carry credentials: set fleet.username and fleet.password_file",
        )
        _check(url.path in ("", "/") and not url.query and not url.fragment, "fleet.broker",
               "must be scheme://host[:port] only")  # fmt: skip
        _check(
            url.scheme == "mqtts" or is_loopback_host(url.hostname or ""),
            "fleet.broker",
            f"plain mqtt:// sends results unencrypted: only to a loopback address; use mqtts:// for "
            f"{url.hostname}",
        )
        _check(port is None or 1 <= port <= 65535, "fleet.broker", "port must be in [1, 65535]")
        _check(bool(re.fullmatch(UNIT_ID, self.unit_id)), "fleet.unit_id",
               f"must be 1-32 letters, digits, '_' or '-', got {self.unit_id!r}")  # fmt: skip
        _check(
            bool(re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", self.topic_prefix)),
            "fleet.topic_prefix",
            "must be topic levels of letters, digits, '_' or '-' separated by '/' (no wildcards)",
        )
        _check(not self.password_file or bool(self.username), "fleet.password_file",
               "needs fleet.username")  # fmt: skip
        _check(100 <= self.max_queued <= 1_000_000, "fleet.max_queued", "must be in [100, 1000000]")
        _check(5 <= self.status_interval_s <= 3600, "fleet.status_interval_s", "must be in [5, 3600] s")
        _check(1 <= self.reconnect_max_s <= 3600, "fleet.reconnect_max_s", "must be in [1, 3600] s")

    @property
    def host(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.broker).hostname or ""

    @property
    def port(self) -> int:
        from urllib.parse import urlsplit

        url = urlsplit(self.broker)
        return url.port or FLEET_SCHEMES[url.scheme]

    @property
    def tls(self) -> bool:
        return self.broker.startswith("mqtts:")

    def read_password(self) -> str | None:
        """The password from ``password_file`` (first line), None without one; ConfigError
        naming the file when it cannot be read."""
        if not self.password_file:
            return None
        path = Path(self.password_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"config key 'fleet.password_file': cannot read {path}: {reason}") from None
        password = text.splitlines()[0] if text.strip() else ""
        _check(bool(password), "fleet.password_file", f"{path} is empty")
        return password

    def check_files(self) -> None:
        """The password file and the CA file (when set) are readable: ConfigError if not."""
        self.read_password()
        if self.ca_file:
            path = Path(self.ca_file).expanduser()
            try:
                with path.open("rb") as f:
                    f.read(1)
            except OSError as exc:
                raise ConfigError(
                    f"config key 'fleet.ca_file': cannot read {path}: {exc.strerror or exc}"
                ) from None


@dataclass(frozen=True)
class AppConfig:
    """The daemon itself (``flexscore run``)."""

    state_dir: str = ""  # empty: $STATE_DIRECTORY (systemd), else ~/.local/state/flexscore
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def __post_init__(self) -> None:
        _check(
            self.log_level in ("debug", "info", "warning", "error"),
            "app.log_level",
            "must be debug, info, warning or error",
        )

    def resolved_state_dir(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        env = os.environ.get("STATE_DIRECTORY")  # set by systemd's StateDirectory=
        if env:
            return Path(env.split(":")[0])
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "flexscore"


@dataclass(frozen=True)
class Config:
    """The whole appliance configuration."""

    app: AppConfig = field(default_factory=AppConfig)

    models: ModelsConfig = field(default_factory=ModelsConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    panel: PanelConfig = field(default_factory=PanelConfig)
    unit: UnitConfig = field(default_factory=UnitConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    web: WebConfig = field(default_factory=WebConfig)
    fleet: FleetConfig | None = None  # [fleet]: publish to an MQTT broker; absent: off

    def tracker_model_names(self) -> list[str]:
        """Manifest keys of every model the tracker loads: palm, landmark and, with int8
        landmarks and ``tracker.precise_fallback``, the weight-only landmark model."""
        palm, landmark = self.models.model_names()
        names = [palm, landmark]
        if self.models.precision == "int8" and self.tracker.precise_fallback:
            names.append(f"{landmark}_weight_only")
        return names


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
        _check(isinstance(value, int | float) and not isinstance(value, bool), path, "must be a number")
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
