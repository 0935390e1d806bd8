"""``flexscore fleet``: the clinic's view of its units over MQTT (docs/FLEET.md).

Imported by :mod:`device.fleet.cli` only when the command runs (it needs paho-mqtt).
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt

from device.config import FleetConfig
from device.errors import ConfigError, FlexscoreError
from device.fleet.client import Broker, connect, new_client
from device.fleet.messages import AVAILABLE, STATUS, TRIALS

QUIET_S = 0.5  # the retained messages have arrived when none came for this long
SESSION_EXPIRY_S = 7 * 24 * 3600


def broker_from_args(args: argparse.Namespace) -> Broker:
    try:
        cfg = FleetConfig(
            broker=args.broker,
            unit_id="clinic",
            username=args.username or "",
            password_file=args.password_file or "",
            ca_file=args.ca_file or "",
            topic_prefix=args.prefix,
        )
        cfg.check_files()
        return Broker.from_config(cfg)
    except ConfigError as exc:
        text = str(exc)
        for key, flag in (
            ("fleet.broker", "--broker"),
            ("fleet.password_file", "--password-file"),
            ("fleet.ca_file", "--ca-file"),
            ("fleet.topic_prefix", "--prefix"),
        ):
            text = text.replace(f"config key '{key}'", flag)
        raise ConfigError(text) from None


@dataclass
class Unit:
    unit_id: str
    available: str = "?"
    status: dict[str, Any] = field(default_factory=dict)


def _topic_parts(prefix: str, topic: str) -> tuple[str, str] | None:
    """(unit id, rest) of ``<prefix>/<unit>/<rest>``."""
    if not topic.startswith(prefix + "/"):
        return None
    unit, _, rest = topic[len(prefix) + 1 :].partition("/")
    return (unit, rest) if unit and rest else None


def _session(broker: Broker, client_id: str, topics: list[str], wait_s: float, on_message: Any,
             session_expiry_s: int = 0) -> mqtt.Client:  # fmt: skip
    """Connect and subscribe; FlexscoreError when the broker is unreachable or refuses."""
    client = new_client(broker, client_id)
    state: dict[str, Any] = {"subscribed": False, "refused": None}

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            state["refused"] = str(reason)
            return
        c.subscribe([(t, 1) for t in topics])

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            state["refused"] = f"subscription refused ({', '.join(refused)})"
        state["subscribed"] = True

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        connect(client, broker, session_expiry_s=session_expiry_s)
    except (OSError, ValueError) as exc:
        raise FlexscoreError(f"cannot reach the broker {broker.host}:{broker.port}: {exc}") from None
    deadline = time.monotonic() + wait_s
    while not state["subscribed"] and state["refused"] is None:
        if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS and state["refused"] is None:
            raise FlexscoreError(f"the broker {broker.host}:{broker.port} closed the connection")
        if time.monotonic() > deadline:
            raise FlexscoreError(f"no answer from the broker {broker.host}:{broker.port} within {wait_s:g} s")
    if state["refused"] is not None:
        client.disconnect()
        raise FlexscoreError(f"the broker refused: {state['refused']} (check --username and --password-file)")
    return client


def cmd_fleet(args: argparse.Namespace) -> int:
    broker = broker_from_args(args)
    if args.follow:
        return follow(broker, args)
    prefix = args.prefix
    units: dict[str, Unit] = {}
    last = [time.monotonic()]

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        parts = _topic_parts(prefix, msg.topic)
        if parts is None:
            return
        last[0] = time.monotonic()
        unit = units.setdefault(parts[0], Unit(parts[0]))
        text = msg.payload.decode("utf-8", "replace")
        if parts[1] == AVAILABLE:
            unit.available = text or "?"
        elif parts[1] == STATUS:
            try:
                doc = json.loads(text) if text else {}
            except ValueError:
                doc = {}
            unit.status = doc if isinstance(doc, dict) else {}

    topics = [f"{prefix}/+/{AVAILABLE}", f"{prefix}/+/{STATUS}"]
    client = _session(broker, f"flexscore-cli-{secrets.token_hex(4)}", topics, args.wait, on_message)
    last[0] = time.monotonic()
    deadline = last[0] + args.wait
    while time.monotonic() - last[0] < QUIET_S and time.monotonic() < deadline:
        client.loop(timeout=0.1)
    client.disconnect()
    print(units_table(sorted(units.values(), key=lambda u: u.unit_id)))
    return 0


def units_table(units: list[Unit]) -> str:
    header = ("UNIT", "AVAILABLE", "STATE", "CAMERA", "LAST STATUS", "LAST TRIAL", "QUEUED")
    rows = [header]
    for u in units:
        s = u.status
        rows.append((
            u.unit_id, u.available, str(s.get("state") or "-"), str(s.get("camera") or "-"),
            str(s.get("at") or "-"), str(s.get("last_trial_at") or "-"),
            str(s.get("queued")) if s.get("queued") is not None else "-",
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if not units:
        lines.append("(no units seen)")
    return "\n".join(lines)


def trial_line(doc: dict[str, Any]) -> str:
    """One trial message as a line of text."""
    label = doc.get("label") or {}
    score = doc.get("score")
    parts = [
        str(doc.get("finished_at") or doc.get("started_at") or "-"),
        str(doc.get("unit_id") or "-"),
        f"trial {doc.get('trial_uuid')}",
        str(doc.get("item") or "-"),
        f"patient {doc.get('patient_code') or '-'}",
        f"side {doc.get('side') or '-'}",
        str(doc.get("status") or "-"),
        f"score {score if score is not None else '-'}",
    ]
    if label:
        parts.append(f"clinician {label.get('score') if label.get('score') is not None else 'not scorable'}")
    return " ".join(parts)


def follow(broker: Broker, args: argparse.Namespace) -> int:
    prefix = args.prefix
    seen: set[str] = set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        parts = _topic_parts(prefix, msg.topic)
        if parts is None or parts[1] != TRIALS:
            return
        try:
            doc = json.loads(msg.payload.decode("utf-8"))
        except ValueError:
            print(f"flexscore: ignored a message that is not JSON on {msg.topic}", file=sys.stderr)
            return
        if not isinstance(doc, dict):
            return
        message_id = str(doc.get("message_id"))
        if message_id in seen:  # sent again after a lost acknowledgement
            return
        seen.add(message_id)
        print(json.dumps(doc, sort_keys=True) if args.json else trial_line(doc), flush=True)

    client_id = args.session or f"flexscore-cli-{secrets.token_hex(4)}"
    expiry = SESSION_EXPIRY_S if args.session else 0
    topic = f"{prefix}/+/{TRIALS}"
    client = _session(broker, client_id, [topic], args.wait, on_message, expiry)
    print(f"flexscore: following {topic} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    stop = [False]

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop[0] = True

    previous = signal.signal(signal.SIGTERM, on_signal)
    delay = 1.0
    try:
        while not stop[0]:
            rc = client.loop(timeout=0.5)
            if rc == mqtt.MQTT_ERR_SUCCESS:
                delay = 1.0
                continue
            # the broker went away: reconnect with back-off (the session brings what was missed)
            print(f"flexscore: connection lost ({mqtt.error_string(rc)}); reconnecting", file=sys.stderr)
            while not stop[0]:
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                try:
                    client = _session(broker, client_id, [topic], args.wait, on_message, expiry)
                    break
                except FlexscoreError as exc:
                    print(f"flexscore: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        client.disconnect()
    return 0
