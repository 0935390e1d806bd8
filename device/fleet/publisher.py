"""The unit's side of the fleet: publish the store's outbox to the site's MQTT broker.

``FleetPublisher(cfg, store, services)`` registers a store save hook (the trial and label
messages are queued in the same transaction as the trial or label: device/store/) and, from
:meth:`start`, runs one thread of its own that

* connects (MQTT 5, TLS for ``mqtts://``) with a last will of ``offline`` on the retained
  ``<prefix>/<unit>/available`` and publishes ``online`` there once connected;
* sends the outbox in order (QoS 1, at most :data:`WINDOW` unacknowledged) and removes a
  message only when the broker acknowledged it: a message sent but not acknowledged before a
  disconnect, crash or power cut is sent again, with the same ``message_id``;
* queues a retained status every ``status_interval_s`` and when the appliance's state
  changes (camera, trial state, fleet state);
* reconnects with back-off (1 s doubling to ``reconnect_max_s``).

Nothing here waits on the camera loop, the recorder or the page; they only share the store's
lock for the few milliseconds of a write. A broker that is down is a state ("waiting for
broker"), not an error; a refused password ("auth failed") or a refused topic ("not
authorized") is a state with a detail and one log line, retried with the same back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypedDict

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device.config import FleetConfig
from device.errors import ConfigError, StoreError
from device.fleet.client import Broker, connect, new_client
from device.fleet.messages import AVAILABLE, OFFLINE, ONLINE, iso, status_message, trial_messages
from device.store import OutboxMessage, SaveEvent, Store

log = logging.getLogger(__name__)

WINDOW = 10  # messages in flight (sent, not yet acknowledged)
FIRST_DELAY_S = 1.0
LOOP_S = 0.2  # the network loop's wait; new messages also wake it
STOP_WAIT_S = 1.0  # at stop: how long to wait for "offline" to be acknowledged
CONNACK_TIMEOUT_S = 15.0  # connected (TCP/TLS) but no answer to CONNECT: try again

WAITING = "waiting for broker"
CONNECTING = "connecting"
CONNECTED = "connected"
AUTH_FAILED = "auth failed"
NOT_AUTHORIZED = "not authorized"
STOPPED = "stopped"


class FleetStatus(TypedDict):
    """The ``fleet`` key of the status snapshot (``/api/status``, the status page)."""

    state: str  # waiting for broker, connecting, connected, auth failed, not authorized, stopped
    queued: int  # messages in the outbox (not yet acknowledged by the broker)
    detail: str | None  # why, for a state other than connected


def _busy(state: Any) -> Any:
    return "busy" if state in ("countdown", "recording", "scoring") else state


class FleetPublisher:
    """See the module doc. ``services`` gives ``status()`` and ``system_info()`` (the
    appliance, :class:`device.web.services.WebServices`)."""

    def __init__(
        self,
        cfg: FleetConfig,
        store: Store,
        services: Any,
        *,
        software_version: str = "unknown",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        cfg.check_files()  # an unreadable password or CA file fails at start, like check-config
        self.cfg = cfg
        self.store = store
        self.services = services
        self.software_version = software_version
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = WAITING
        self._detail: str | None = "not started"
        self._queued = store.outbox_count()
        self._dirty = False
        # publisher-thread state
        self._client: mqtt.Client | None = None
        self._connected = False
        self._gone: str | None = None  # why the connection ended (set by callbacks)
        self._inflight: dict[int, int] = {}  # mid → outbox id
        self._acked: list[int] = []
        self._last_sent = 0
        self._online_mid: int | None = None
        self._delay = FIRST_DELAY_S
        self._next_attempt = 0.0
        self._connect_started = 0.0
        self._last_status_at: float | None = None
        self._last_status_key: Any = None
        store.outbox_limit = cfg.max_queued
        store.add_save_hook(self._on_saved)

    @property
    def prefix(self) -> str:
        return f"{self.cfg.topic_prefix}/{self.cfg.unit_id}/"

    # -- what the rest of the appliance sees ---------------------------------------------
    def status(self) -> FleetStatus:
        if self._dirty:  # a trial or label was queued since the last count
            self._dirty = False
            self._recount()
        with self._lock:
            return {"state": self._state, "queued": self._queued, "detail": self._detail}

    def _set_state(self, state: str, detail: str | None = None, *, level: int = logging.INFO) -> None:
        with self._lock:
            changed = (state, detail) != (self._state, self._detail)
            self._state, self._detail = state, detail
        if changed:
            log.log(level, "fleet: %s%s", state, f" ({detail})" if detail else "")

    def _on_saved(self, store: Store, event: SaveEvent) -> Iterable[OutboxMessage]:
        """Store save hook (inside the trial's or label's transaction)."""
        messages = trial_messages(
            store, event, unit_id=self.cfg.unit_id, software_version=self.software_version
        )
        if messages:
            self._dirty = True
            self._wake.set()  # the thread reads them once the transaction commits
        return messages

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._set_state(WAITING, f"connecting to {self.cfg.broker}")
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Say ``offline``, disconnect and end the thread. Idempotent. Queued messages stay
        in the store for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("fleet: the publisher thread did not end within %.0f s", timeout)
            self._thread = None
        self._set_state(STOPPED)

    def __repr__(self) -> str:
        st = self.status()
        return f"<FleetPublisher {self.cfg.unit_id} {st['state']} queued={st['queued']}>"

    # -- the thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception as exc:  # never takes the appliance down; retried with back-off
                    log.exception("fleet: unexpected error")
                    self._close(say_offline=False)
                    self._set_state(WAITING, f"unexpected error: {exc}", level=logging.ERROR)
                    self._schedule_retry()
        finally:
            self._close(say_offline=True)

    def _step(self) -> None:
        now = self._clock()
        self._maybe_queue_status(now)
        if self._client is None:
            if now >= self._next_attempt:
                self._connect()
            else:
                self._wake.wait(min(self._next_attempt - now, 1.0))
                self._wake.clear()
            return
        try:
            rc = self._client.loop(timeout=LOOP_S)
        except (OSError, ValueError) as exc:  # e.g. a TLS error on the open connection
            rc, self._gone = mqtt.MQTT_ERR_CONN_LOST, self._gone or f"connection lost ({exc})"
        self._wake.clear()
        if rc != mqtt.MQTT_ERR_SUCCESS and self._gone is None:
            self._gone = f"connection lost ({mqtt.error_string(rc)})"
        if not self._connected and self._gone is None and now - self._connect_started > CONNACK_TIMEOUT_S:
            self._gone = f"no answer from the broker within {CONNACK_TIMEOUT_S:.0f} s"
        self._settle_acks()
        if self._gone is not None:
            self._drop_connection()
            return
        if self._connected:
            self._pump()

    def _connect(self) -> None:
        try:
            broker = Broker.from_config(self.cfg)  # re-read the password file each attempt
        except ConfigError as exc:
            self._set_state(AUTH_FAILED, str(exc), level=logging.ERROR)
            self._schedule_retry()
            return
        client = new_client(broker, f"flexscore-{self.cfg.unit_id}")
        client.will_set(self.prefix + AVAILABLE, OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._gone, self._connected = None, False
        self._inflight, self._acked, self._last_sent, self._online_mid = {}, [], 0, None
        try:
            connect(client, broker)
        except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake, DNS
            if self._state != AUTH_FAILED:
                self._set_state(WAITING, f"{self.cfg.broker}: {exc}")
            self._schedule_retry()
            return
        self._client = client
        self._connect_started = self._clock()
        if self._state not in (AUTH_FAILED, NOT_AUTHORIZED):
            self._set_state(CONNECTING, self.cfg.broker)

    def _schedule_retry(self) -> None:
        self._next_attempt = self._clock() + self._delay
        self._delay = min(self._delay * 2, self.cfg.reconnect_max_s)

    def _drop_connection(self) -> None:
        why = self._gone or "disconnected"
        self._close(say_offline=False)
        if self._state == CONNECTED or self._state == CONNECTING:
            self._set_state(WAITING, why, level=logging.WARNING)
        self._schedule_retry()

    def _close(self, *, say_offline: bool) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if say_offline and self._connected:
            try:
                info = client.publish(self.prefix + AVAILABLE, OFFLINE, qos=1, retain=True)
                deadline = self._clock() + STOP_WAIT_S
                while not info.is_published() and self._clock() < deadline:
                    if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                        break
                self._settle_acks()
            except (OSError, ValueError, RuntimeError) as exc:
                log.debug("fleet: offline not sent: %s", exc)
        self._connected = False
        try:
            client.disconnect()
            client.loop(timeout=0.05)
        except (OSError, ValueError, RuntimeError):
            pass
        sock = client.socket()
        if sock is not None:
            sock.close()

    # paho callbacks: run inside client.loop(), on this thread
    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._gone = f"the broker refused the connection: {reason}"
            who = self.cfg.username or "(no user name)"
            self._set_state(
                AUTH_FAILED,
                f"{reason} for user {who}: check fleet.username and fleet.password_file",
                level=logging.ERROR,
            )
            return
        self._connected = True
        self._online_mid = client.publish(self.prefix + AVAILABLE, ONLINE, qos=1, retain=True).mid
        if self._state != NOT_AUTHORIZED:  # else: connected once the broker takes "online"
            self._became_connected()

    def _became_connected(self) -> None:
        self._delay = FIRST_DELAY_S
        self._set_state(CONNECTED, None)

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self._gone is None:
            self._gone = f"disconnected ({reason})"

    def _on_publish(self, _c: mqtt.Client, _ud: Any, mid: int, reason: Any, _props: Any) -> None:
        row = self._inflight.pop(mid, None)
        if reason.is_failure:
            topic = "available" if mid == self._online_mid else "an outbox message"
            self._gone = f"the broker refused {topic}: {reason}"
            self._set_state(
                NOT_AUTHORIZED,
                f"the broker refused to take messages under {self.prefix}# ({reason}): its ACL "
                f"must let user {self.cfg.username or '(none)'} write there",
                level=logging.ERROR,
            )
            return
        if self._state == NOT_AUTHORIZED:
            self._became_connected()
        if row is not None:
            self._acked.append(row)

    def _settle_acks(self) -> None:
        """Remove acknowledged messages from the outbox (one transaction)."""
        if not self._acked:
            return
        acked, self._acked = self._acked, []
        try:
            self.store.outbox_done(acked)
        except StoreError as exc:  # sent again later: the consumer drops the duplicate
            log.warning("fleet: cannot remove %d sent message(s) from the outbox: %s", len(acked), exc)
        self._recount()

    def _pump(self) -> None:
        """Send the next queued messages, in order, while fewer than WINDOW are in flight."""
        room = WINDOW - len(self._inflight)
        if room <= 0 or self._client is None:
            return
        try:
            rows = self.store.outbox(after_id=self._last_sent, limit=room)
        except StoreError as exc:
            log.warning("fleet: cannot read the outbox: %s", exc)
            return
        for row in rows:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = ("message_id", row.message_id)
            info = self._client.publish(
                self.prefix + row.topic, row.payload, qos=1, retain=row.retain, properties=props
            )
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                self._gone = f"cannot send ({mqtt.error_string(info.rc)})"
                return
            self._inflight[info.mid] = row.id
            self._last_sent = row.id

    def _recount(self) -> None:
        try:
            n = self.store.outbox_count()
        except StoreError:
            return
        with self._lock:
            self._queued = n

    # -- status ------------------------------------------------------------------------
    def _maybe_queue_status(self, now: float) -> None:
        try:
            snap = dict(self.services.status())
        except Exception as exc:  # the appliance is stopping
            log.debug("fleet: no status: %s", exc)
            return
        key = (snap.get("camera"), _busy(snap.get("state")), self._state)
        due = self._last_status_at is None or now - self._last_status_at >= self.cfg.status_interval_s
        if not due and key == self._last_status_key:
            return
        self._last_status_at, self._last_status_key = now, key
        try:
            message = status_message(self._status_doc(snap), unit_id=self.cfg.unit_id, now=datetime.now(UTC))
            self.store.enqueue([message])
        except Exception as exc:  # a full or locked store, a stopping appliance: the next one
            log.warning("fleet: status not queued: %s", exc)
            return
        self._recount()

    def _status_doc(self, snap: dict[str, Any]) -> dict[str, Any]:
        info = self.services.system_info()
        last = self.store.last_trial()
        models = {m.name: m.sha256 for m in info.models if m.in_use}
        return {
            "state": snap.get("state"),
            "camera": snap.get("camera"),
            "fps": snap.get("fps"),
            "software_version": info.software_version,
            "models": models,
            "scorer": info.settings.get("scorer in use"),
            "disk_free_bytes": info.disk_free_bytes,
            "uptime_s": round(info.uptime_s),
            "queued": self.status()["queued"],
            "last_trial_at": iso(last.finished_at or last.started_at) if last else None,
            "store_error": snap.get("store_error"),
        }


def fleet_from_config(cfg: FleetConfig | None, store: Store, services: Any) -> FleetPublisher | None:
    """The publisher when ``[fleet]`` is configured, else None (the composition root's one call)."""
    if cfg is None:
        return None
    return FleetPublisher(cfg, store, services, software_version=_software_version())


def _software_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("flexscore")
    except metadata.PackageNotFoundError:
        from device import __version__

        return __version__
