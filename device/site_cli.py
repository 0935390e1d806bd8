"""``flexscore validate`` and ``flexscore models``: the site's
validation and re-training loop (see docs/VALIDATION.md, "Site validation").

* ``validate [--since DATE] [--html OUT] [--json]``: agreement of the kit with the clinician
  labels in the store (:mod:`device.scoring.agreement`).
* ``train --from-store STORE --out DIR`` (workstation, ``train`` extra) is tooling: registered
  by :mod:`device.tools.cli`, built by :mod:`device.tools.training`.
* ``models list | install CANDIDATE | rollback``: site-installed scorers in ``STATE/models/``
  (:mod:`device.scoring.installed`); a candidate is installed only if it passes the gate of
  :mod:`device.scoring.candidate`.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from device.config import Config, load_config
from device.errors import InputError
from device.store import Store

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML", help="config file (default: built-in defaults)")
    p.add_argument("--state-dir", metavar="DIR", help="the appliance's state directory (default: config)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "validate",
        help="agreement of the kit with the clinicians' labels (kappa, confusion, …)",
        description="Report how well the kit's scores agree with the clinician labels in the "
        "store: counts, confusion matrix, exact agreement, quadratic weighted kappa with a "
        "bootstrap 95%% interval, not-scorable share, review rate; by model version and side.",
    )
    _common(p)
    p.add_argument("--store", metavar="FILE", help="the trial store (default: the configured one)")
    p.add_argument("--since", metavar="DATE", help="only trials started on or after DATE (YYYY-MM-DD)")
    p.add_argument("--html", metavar="OUT", help="also write the report as an HTML page")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_validate)

    p = subparsers.add_parser(
        "models",
        help="list, install or roll back site-trained scorer models",
        description="Site-installed scorers live in STATE/models/ (never in the shipped models/). "
        "A candidate is installed only with its report and only if it is not worse than the "
        "model in use on the held-out labelled trials (kappa, per-class recall) and on the "
        "kinematic reference trials.",
    )
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = msub.add_parser("list", help="the shipped and installed scorers; which is active")
    _common(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=run_models_list)
    q = msub.add_parser("install", help="check a candidate and install it if it passes")
    q.add_argument("candidate", metavar="CANDIDATE_DIR")
    q.add_argument("--store", metavar="FILE",
                   help="re-check on the held-out trials of this store (default: configured)")  # fmt: skip
    q.add_argument("--json", action="store_true")
    _common(q)
    q.set_defaults(func=run_models_install)
    q = msub.add_parser("rollback", help="restore the previous scorer")
    q.add_argument("--name", choices=["scorer_int8", "scorer_2d_int8"], help="default: the last installed")
    _common(q)
    q.set_defaults(func=run_models_rollback)


# --------------------------------------------------------------------------- helpers


def _config(args: argparse.Namespace) -> tuple[Config, Path]:
    cfg = load_config(args.config)
    state = Path(args.state_dir).expanduser() if args.state_dir else cfg.app.resolved_state_dir()
    return cfg, state


def _store_path(args: argparse.Namespace, cfg: Config, state: Path) -> Path:
    path = Path(args.store).expanduser() if getattr(args, "store", None) else cfg.store.resolved_path(state)
    if not path.is_file():
        raise InputError(f"no trial store at {path} (give --store FILE or --state-dir DIR)")
    return path


# --------------------------------------------------------------------------- validate


def run_validate(args: argparse.Namespace) -> int:
    from device.scoring.agreement import format_text, store_report

    cfg, state = _config(args)
    since = None
    if args.since:
        try:
            since = date.fromisoformat(args.since)
        except ValueError:
            raise InputError(f"--since must be a date like 2024-05-31, got {args.since!r}") from None
    path = _store_path(args, cfg, state)
    with Store(path) as st:
        rep = store_report(st, since)
    if args.html:
        from device.web.views.validation import render_standalone

        out = Path(args.html)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_standalone(rep, f"store {path.name}"), encoding="utf-8")
        log.info("wrote %s", out)
    print(json.dumps(rep, indent=1) if args.json else format_text(rep))
    return 0


# --------------------------------------------------------------------------- models


def run_models_list(args: argparse.Namespace) -> int:
    from device.scoring.installed import InstalledModels

    cfg, state = _config(args)
    rows = InstalledModels(state, cfg.models.resolved_dir()).listing()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        mark = "*" if r["active"] else " "
        when = f"  installed {r['installed_at']}" if r["installed_at"] else ""
        print(f"{mark} {r['name']:15s} {r['version']:40s} {r['source']}{when}")
    return 0


def run_models_install(args: argparse.Namespace) -> int:
    from device.scoring.installed import install_candidate

    cfg, state = _config(args)
    store_path = Path(args.store).expanduser() if args.store else cfg.store.resolved_path(state)
    st = Store(store_path) if store_path.is_file() else None
    try:
        res = install_candidate(
            args.candidate,
            state_dir=state,
            shipped_dir=cfg.models.resolved_dir(),
            store=st,
            actor="cli",
            threads=cfg.scoring.threads,
        )
    finally:
        if st is not None:
            st.close()
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        h, r = res["heldout"], res["reference"]
        print(
            f"candidate {res['version']} vs current {res['current']} "
            f"(held-out figures from the {res['source']})"
        )
        print(f"  held-out n={h['n']}: QWK {h['candidate']['qwk']:.3f} vs {h['current']['qwk']:.3f}")
        print(f"  reference: QWK {r['candidate']['qwk']:.3f} vs {r['current']['qwk']:.3f}")
        if res["installed"]:
            print(
                f"installed {res['version']}; restart the appliance (systemctl restart flexscore) to use it"
            )
        else:
            print("REFUSED:")
            for prob in res["problems"]:
                print(f"  - {prob}")
    return 0 if res["installed"] else 1


def run_models_rollback(args: argparse.Namespace) -> int:
    from device.scoring.installed import InstalledModels

    cfg, state = _config(args)
    removed, now = InstalledModels(state, cfg.models.resolved_dir()).rollback(args.name)
    print(f"rolled back {removed}; active now: {now}; restart the appliance to use it")
    return 0
