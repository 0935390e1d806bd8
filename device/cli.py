"""``flexscore`` command line: thin — parse, set up logging, call the library, map errors.

Each area registers its own sub-commands from its own module (``register(subparsers)``),
so this file only wires them. A :class:`FlexscoreError` becomes one clear line on stderr and
exit code 2; nothing a user can cause ends in a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from device import __version__
from device.errors import FlexscoreError

log = logging.getLogger(__name__)

# Modules that provide ``register(subparsers) -> None``; each sub-parser sets ``func``.
COMMAND_MODULES: tuple[str, ...] = (
    "device.vision.cli",
    "device.scoring.cli",
    "device.app_cli",
    "device.site_cli",
    "device.fleet.cli",
    "device.tools.cli",  # bench, train: workstation tooling (the runtime never imports it)
)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flexscore",
        description="Fugl-Meyer 'mass finger flexion' scoring appliance.",
    )
    parser.add_argument("--version", action="version", version=f"flexscore {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(args.func(args) or 0)
    except FlexscoreError as exc:
        print(f"flexscore: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("flexscore: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
