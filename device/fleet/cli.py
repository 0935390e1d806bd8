"""``flexscore fleet``: the clinic's view of its units, from the broker's retained topics.

Without ``--follow`` it subscribes to ``<prefix>/+/available`` and ``<prefix>/+/status``,
collects the retained messages and prints one line per unit seen. With ``--follow`` it stays
subscribed to ``<prefix>/+/trials`` (QoS 1) and prints each new trial as one line (``--json``:
the message itself), dropping a message it has already printed (same ``message_id``);
``--session NAME`` keeps a broker session so that a restarted consumer also gets what was
published while it was away.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    f = sub.add_parser(
        "fleet",
        help="list the units publishing to an MQTT broker, or follow their trials",
        description="Read the fleet's topics on the site's broker (docs/FLEET.md): a table of the "
        "units seen (availability, last status, last trial, queued messages), or with --follow "
        "each new trial as a line.",
    )
    f.add_argument("--broker", required=True, metavar="URL", help="mqtts://host[:port] (mqtt:// to loopback)")
    f.add_argument("--username", metavar="U", help="user name at the broker")
    f.add_argument("--password-file", metavar="F", help="file holding the password")
    f.add_argument("--ca-file", metavar="F", help="PEM CA bundle for mqtts (default: the system's)")
    f.add_argument("--prefix", default="flexscore", help="topic prefix of the units (default: flexscore)")
    f.add_argument("--follow", action="store_true", help="print each new trial as a line until interrupted")
    f.add_argument("--json", action="store_true", help="with --follow: print each trial message as JSON")
    f.add_argument(
        "--session",
        metavar="NAME",
        help="with --follow: keep a broker session under this client id (7 days), so trials "
        "published while this consumer was away arrive when it is back",
    )
    f.add_argument("--wait", type=float, default=5.0, metavar="S", help="most seconds to wait for the broker")
    f.set_defaults(func=_run_fleet)


def _run_fleet(args: argparse.Namespace) -> int:
    """``flexscore fleet``; paho-mqtt (the ``device`` extra) is imported only now, so the
    other commands run where it is not installed (the training venv)."""
    from device.fleet import consumer

    return consumer.cmd_fleet(args)
