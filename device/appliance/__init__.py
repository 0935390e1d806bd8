"""The appliance core: its logic, once (see :mod:`device.appliance.core`)."""

from device.appliance.core import (
    MIN_FREE_BYTES,
    NO_PATIENT,
    Appliance,
    FpsMeter,
    TrialScorer,
    TrialStored,
)
from device.appliance.session import RULE_VERSION
from device.appliance.status import JpegFrame, ModelInfo, StatusSnapshot, SystemInfo

__all__ = [
    "MIN_FREE_BYTES",
    "NO_PATIENT",
    "RULE_VERSION",
    "Appliance",
    "FpsMeter",
    "JpegFrame",
    "ModelInfo",
    "StatusSnapshot",
    "SystemInfo",
    "TrialScorer",
    "TrialStored",
]
