#!/usr/bin/env python3
"""The site loop on simulated sites: fill a store, validate, train a candidate, try to install.

Each *site* is a trial store filled with kinematic synthetic trials (device/trial/synthetic.py,
ground truth known) scored by the shipped models, and labelled by a simulated clinician:

* ``honest``: labels = the generator's score;
* ``under``: 60 % of full flexions (2) labelled 1 — a site that under-scores;
* ``never2``: every 2 labelled 1 — a site that never gives 2.

For each: ``flexscore validate`` figures, ``flexscore train --from-store`` (fine-tuned from
the shipped scorer) and ``flexscore models install`` into a throw-away state directory.
Synthetic data: these figures show the loop and its gate work, not clinical accuracy.

Usage (needs TensorFlow: the ``train`` extra / .venv-train)::

    .venv-train/bin/python scripts/site_demo.py [--per-class 30] [--out .cache/site_demo]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # site_helpers: the store filler the tests use

from device.config import Config  # noqa: E402
from device.scoring.agreement import store_report  # noqa: E402
from device.scoring.candidate import device_variant  # noqa: E402
from device.scoring.installed import install_candidate  # noqa: E402
from device.store import Store  # noqa: E402
from device.tools.training import train_from_store  # noqa: E402

SITES = {
    "honest": lambda truth, i: truth,
    "under": lambda truth, i: 1 if truth == 2 and i % 5 < 3 else truth,
    "never2": lambda truth, i: min(truth, 1),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-class", type=int, default=30)
    p.add_argument("--out", default=str(REPO / ".cache" / "site_demo"))
    p.add_argument("--small", action="store_true", help="tiny training configuration")
    args = p.parse_args()
    from site_helpers import MODELS, fill_store

    variant = device_variant(Config())  # the scorer the appliance uses with the default config
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rows = []
    for k, (site, label_of) in enumerate(SITES.items()):
        db = out / f"{site}.db"
        fill_store(db, per_class=args.per_class, seed=100 + k, real=False, label_of=label_of)
        with Store(db) as st:
            agreement = store_report(st)
        o = agreement["overall"]
        rep_versions = set(agreement["by_model_version"])
        rep = train_from_store(
            db, out / f"cand_{site}", variant=variant, current_dir=MODELS, small=args.small, seed=1234
        )
        with Store(db) as st:
            res = install_candidate(
                out / f"cand_{site}", state_dir=out / f"state_{site}", shipped_dir=MODELS, store=st
            )
        h, r = res["heldout"], res["reference"]
        rows.append(
            {
                "site": site,
                "variant": variant,
                "current": res["current"],
                "kit_versions": sorted(rep_versions),
                "labelled": o["n"],
                "kit_vs_labels_qwk": o["qwk"],
                "qwk_ci95": o["qwk_ci95"],
                "heldout_n": h["n"],
                "heldout_qwk_current": h["current"]["qwk"],
                "heldout_qwk_candidate": h["candidate"]["qwk"],
                "reference_qwk_current": r["current"]["qwk"],
                "reference_qwk_candidate": r["candidate"]["qwk"],
                "installed": res["installed"],
                "problems": res["problems"],
                "report_gate_passed": rep["gate"]["passed"],
            }
        )
    (out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print("| site | labelled | kit vs labels QWK (95 % CI) | held-out QWK current → candidate "
          "| reference QWK current → candidate | installed |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        ci = r["qwk_ci95"]
        print(
            f"| {r['site']} | {r['labelled']} | {r['kit_vs_labels_qwk']:.2f} ({ci[0]:.2f}–{ci[1]:.2f}) "
            f"| {r['heldout_qwk_current']:.2f} → {r['heldout_qwk_candidate']:.2f} (n={r['heldout_n']}) "
            f"| {r['reference_qwk_current']:.2f} → {r['reference_qwk_candidate']:.2f} "
            f"| {'yes' if r['installed'] else 'refused'} |"
        )
    for r in rows:
        for prob in r["problems"]:
            print(f"{r['site']}: {prob}")
    print(f"scorer {rows[0]['current']} ({variant}); kit scores by {', '.join(rows[0]['kit_versions'])}")
    print(f"details: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
