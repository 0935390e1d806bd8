"""The fleet: results and health over MQTT with store-and-forward (docs/FLEET.md).

* :mod:`device.fleet.messages` — topics and JSON payloads (pure);
* :mod:`device.fleet.publisher` — the unit's publisher thread over the store's outbox;
* :mod:`device.fleet.client` — paho-mqtt clients (MQTT 5, TLS);
* :mod:`device.fleet.cli` / :mod:`device.fleet.consumer` — ``flexscore fleet``, the clinic's
  view of its units (the command's arguments / the paho consumer, imported when it runs).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FleetPublisher", "FleetStatus", "fleet_from_config"]


def __getattr__(name: str) -> Any:
    """The publisher's names, imported on first use: paho-mqtt (the ``device`` extra) is
    needed only where a fleet is configured (the training venv imports the CLI without it)."""
    if name in __all__:
        from device.fleet import publisher

        return getattr(publisher, name)
    raise AttributeError(f"module 'device.fleet' has no attribute {name!r}")
