"""The fleet: results and health over MQTT with store-and-forward (docs/FLEET.md).

* :mod:`device.fleet.messages` — topics and JSON payloads (pure);
* :mod:`device.fleet.publisher` — the unit's publisher thread over the store's outbox;
* :mod:`device.fleet.client` — paho-mqtt clients (MQTT 5, TLS);
* :mod:`device.fleet.cli` — ``flexscore fleet``, the clinic's view of its units.
"""

from __future__ import annotations

from device.fleet.publisher import FleetPublisher, FleetStatus, fleet_from_config

__all__ = ["FleetPublisher", "FleetStatus", "fleet_from_config"]
