#!/usr/bin/env python3
"""Paired synthetic evaluation of scoring against the unaffected hand (docs/VALIDATION.md).

Each pair is one synthetic session (``device.trial.synthetic.make_pair``: same hand anatomy,
same camera set-up, the two sides): a reference trial of the unaffected hand making its
best fist, and a trial of the affected hand. Three conditions, with z (3D model) and
without (2D model):

* ``limited``: both hands reach the same limited range (reach 0.40–0.65 of a full fist):
  expected 2 with the reference, < 2 without;
* ``limited_partial``: the reference as above, the affected hand reaches only 30–60 % of
  the reference's range: expected < 2 in both modes;
* ``normal``: a reference with the full range and an affected attempt of score 0, 1 or 2:
  the reference mode should give the absolute mode's result.

Usage: ``.venv/bin/python scripts/eval_reference.py [--pairs 60] [--seed 20261127]``
(no data files needed; prints a JSON summary).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device.config import Config
from device.scoring.decide import Decider
from device.trial.synthetic import make_pair


def evaluate(pairs: int, seed: int) -> dict[str, dict[str, object]]:
    decider = Decider(Config())
    out: dict[str, dict[str, object]] = {}
    try:
        for with_z in (True, False):
            variant = "3d" if with_z else "2d"
            rng = np.random.default_rng(seed + int(with_z))
            stats: dict[str, list[tuple[int | None, int | None, str]]] = {
                "limited": [],
                "limited_partial": [],
                "normal": [],
            }
            for i in tqdm(range(pairs), desc=f"pairs ({variant})", unit="pair", file=sys.stderr):
                reach = float(rng.uniform(0.40, 0.65))
                conditions = (
                    ("limited", 2, reach, reach),
                    ("limited_partial", 2, reach * float(rng.uniform(0.3, 0.6)), reach),
                    ("normal", i % 3, 1.0, 1.0),
                )
                for name, score, r_aff, r_ref in conditions:
                    aff, ref, _ = make_pair(
                        score, rng, reach_affected=r_aff, reach_reference=r_ref, with_z=with_z
                    )
                    absolute = decider.score(aff)
                    relative = decider.score(aff, reference=ref)
                    stats[name].append((absolute.score, relative.score, str(relative.details.get("mode"))))
            for name, rows in stats.items():
                a = [r[0] for r in rows]
                b = [r[1] for r in rows]
                entry: dict[str, object] = {
                    "pairs": len(rows),
                    "reference_mode_used": round(sum(r[2] == "reference" for r in rows) / len(rows), 3),
                    "not_scorable": sum(x is None for x in b),
                }
                if name == "limited":
                    entry["score2_with_reference"] = round(sum(x == 2 for x in b) / len(b), 3)
                    entry["below2_without_reference"] = round(
                        sum(x is not None and x < 2 for x in a) / len(a), 3
                    )
                elif name == "limited_partial":
                    entry["below2_with_reference"] = round(
                        sum(x is not None and x < 2 for x in b) / len(b), 3
                    )
                else:
                    entry["same_as_absolute"] = round(
                        sum(x == y for x, y in zip(a, b, strict=True)) / len(a), 3
                    )
                out[f"{variant}/{name}"] = entry
    finally:
        decider.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=60, help="pairs per condition and variant")
    p.add_argument("--seed", type=int, default=20261127)
    args = p.parse_args()
    print(json.dumps(evaluate(args.pairs, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
