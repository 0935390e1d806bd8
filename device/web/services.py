"""What the web page needs from the appliance: the :class:`WebServices` protocol.

The views never touch hardware or SQL; they call one ``services`` object: the appliance
core, :class:`device.appliance.Appliance` — built with the real parts by the composition
root (``device/app.py``), with fake parts (synthetic camera, fake clock, a stand-in RNN) by
:mod:`device.web.fake` for tests and ``flask --app device.web.fake run``. The logic behind
every member lives once, in :mod:`device.appliance`; the names below are re-exported for
the views.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from device.appliance.session import (
    OUTCOME_STATUS,
    SIDES,
    ReferenceResult,
    TrialOutcome,
    check_reference,
    check_side,
    current_reference,
    find_session_reference,
    finger_text,
    measure_reference,
    resolve_patient,
    score_in_session,
    session_start,
    trial_outcome,
)
from device.appliance.status import (
    JpegFrame,
    ModelInfo,
    StatusSnapshot,
    SystemInfo,
    disk_usage,
    models_from_manifest,
    software_version,
)
from device.store import Store

__all__ = [
    "OUTCOME_STATUS",
    "SIDES",
    "JpegFrame",
    "ModelInfo",
    "ReferenceResult",
    "StatusSnapshot",
    "SystemInfo",
    "TrialOutcome",
    "WebServices",
    "check_reference",
    "check_side",
    "current_reference",
    "disk_usage",
    "find_session_reference",
    "finger_text",
    "measure_reference",
    "models_from_manifest",
    "resolve_patient",
    "score_in_session",
    "session_start",
    "software_version",
    "trial_outcome",
]


@runtime_checkable
class WebServices(Protocol):
    """Everything the web page asks of the appliance (implemented by the composition root).

    Threading: every method may be called from several waitress threads at once.
    Nothing here may block the tracker: ``latest_jpeg`` reads the newest frame, never a queue.
    """

    @property
    def store(self) -> Store:
        """The open trial store (the web uses its public methods only)."""
        ...

    def status(self) -> StatusSnapshot:
        """A snapshot of the appliance (see :class:`StatusSnapshot`); cheap, never blocks."""
        ...

    def start_trial(
        self, patient_code: str | None, side: str | None, reference: bool = False, item: str | None = None
    ) -> bool:
        """Start a trial (countdown first) for ``patient_code`` (found or created with
        :func:`resolve_patient`; None: no patient) and the affected ``side`` ("left",
        "right" or None for the patient's or the configured side). With ``reference`` the
        trial records the other, unaffected hand (see :func:`check_reference`). ``item``: the
        assessment item (a key of :mod:`device.items`, "all" for every item from one
        recording, None for the configured ``trial.item``). Returns
        False when a trial is already running; raises :class:`InputError` for a bad code or
        side, or a reference without a patient or side."""
        ...

    def bound_patient(self) -> tuple[str, str | None] | None:
        """(code, affected side) of the patient the unit records for when no code is given
        (a clinician's binding, else the config's ``[unit] patient``), or None."""
        ...

    def bind_patient(self, code: str | None, side: str | None, actor: str = "clinician") -> Any:
        """Bind the unit to patient ``code`` (created if new); an empty code unbinds it.
        Raises :class:`InputError` for a bad code or side."""
        ...

    def cancel_trial(self) -> bool:
        """Cancel the running trial; False when none runs."""
        ...

    def latest_jpeg(self, newer_than: int = -1, timeout: float = 0.0) -> JpegFrame | None:
        """The newest live frame with the skeleton drawn, if its ``seq`` > ``newer_than``;
        waits up to ``timeout`` seconds for one, else None (no frame yet, or camera stalled).
        :class:`device.web.live.LiveFrames` implements exactly this."""
        ...

    def system_info(self) -> SystemInfo:
        """Software version, uptime, disk space, models and camera for the status page."""
        ...
