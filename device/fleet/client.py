"""paho-mqtt clients for the fleet: the unit's publisher and the clinic's ``flexscore fleet``.

MQTT 5 (so the broker says when it refuses a message: a PUBACK with "Not authorized" rather
than MQTT 3's silent drop), paho's version-2 callbacks, TLS for ``mqtts://`` with the system's
CAs or ``ca_file``, host names checked.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device.config import FleetConfig

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Broker:
    """Where and how to connect (the password already read from its file)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    @classmethod
    def from_config(cls, cfg: FleetConfig) -> Broker:
        """From ``[fleet]``: reads the password file now (ConfigError when it cannot)."""
        return cls(
            cfg.host, cfg.port, cfg.tls, cfg.username or None, cfg.read_password(), cfg.ca_file or None
        )

    def __repr__(self) -> str:  # never the password
        scheme = "mqtts" if self.tls else "mqtt"
        return f"<Broker {scheme}://{self.host}:{self.port} user={self.username!r}>"


def new_client(broker: Broker, client_id: str) -> mqtt.Client:
    """A configured, unconnected client (connect with ``client.connect(broker.host, ...)``)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect_timeout = CONNECT_TIMEOUT_S
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        context = ssl.create_default_context(cafile=broker.ca_file)  # system CAs without one
        client.tls_set_context(context)
    return client


def connect(client: mqtt.Client, broker: Broker, *, session_expiry_s: int = 0) -> None:
    """Open the TCP (TLS) connection and send CONNECT; the CONNACK arrives in ``loop()``.
    ``session_expiry_s`` > 0 resumes (or starts) a session the broker keeps that long after a
    disconnect, with the messages of its subscriptions; 0: a new session each time. Raises
    OSError when the broker cannot be reached."""
    properties = None
    if session_expiry_s > 0:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = session_expiry_s
    client.connect(
        broker.host,
        broker.port,
        keepalive=KEEPALIVE_S,
        clean_start=session_expiry_s <= 0,
        properties=properties,
    )
