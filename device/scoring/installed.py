"""Site-installed scorer models: ``STATE/models/`` beside the shipped ``models/``.

``flexscore models install CANDIDATE`` copies a checked candidate (:mod:`device.scoring.candidate`)
into ``STATE/models/<version>/`` and makes it active; the repository's ``models/`` is never
touched. Layout::

    STATE/models/manifest.json   the active installed scorers, in the shipped manifest's format
                                 ("file" is "<version>/scorer_int8.tflite"; sha256 checked on load)
    STATE/models/installs.json   per scorer name, the stack of installed entries (newest last)
                                 and a log of every install and rollback
    STATE/models/<version>/      the model file and its report, kept after a rollback

The scorer (:class:`device.scoring.decide.Decider`) loads a scorer from here when this manifest
has it (:func:`scorer_dir`), else the shipped one. ``rollback`` pops the newest install of a
scorer: the one below it — or the shipped model when none is left — is active again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device.errors import ModelError
from device.scoring.candidate import Candidate
from device.scoring.rnn import model_version
from device.vision.runtime import MANIFEST_NAME, load_manifest

log = logging.getLogger(__name__)

SUBDIR = "models"
INSTALLS_NAME = "installs.json"
SHIPPED = "shipped"


def installed_dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / SUBDIR


def scorer_dir(shipped_dir: str | Path, state_dir: str | Path | None, name: str) -> Path:
    """Where scorer ``name`` is loaded from: the state dir's installed models when their
    manifest has it, else the shipped models directory."""
    if state_dir is not None:
        inst = installed_dir(state_dir)
        if (inst / MANIFEST_NAME).is_file():
            try:
                if name in load_manifest(inst)["models"]:
                    return inst
            except ModelError as exc:
                log.error("ignoring the installed models in %s: %s", inst, exc)
    return Path(shipped_dir)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class InstalledModels:
    """The installed scorers of one state directory (see the module doc)."""

    def __init__(self, state_dir: str | Path, shipped_dir: str | Path) -> None:
        self.root = installed_dir(state_dir)
        self.shipped_dir = Path(shipped_dir)

    # -- state -----------------------------------------------------------------------
    def _installs(self) -> dict[str, Any]:
        path = self.root / INSTALLS_NAME
        if not path.is_file():
            return {"stacks": {}, "log": []}
        try:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path} is unreadable: {exc}") from None
        doc.setdefault("stacks", {})
        doc.setdefault("log", [])
        return doc

    def _save(self, doc: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.root / INSTALLS_NAME, doc)
        active = {name: stack[-1] for name, stack in doc["stacks"].items() if stack}
        _write_json(self.root / MANIFEST_NAME, {"version": 1, "models": active})

    def active(self, name: str) -> tuple[Path, dict[str, Any]]:
        """(directory, manifest entry) of the scorer ``name`` in use."""
        stack = self._installs()["stacks"].get(name) or []
        if stack:
            return self.root, dict(stack[-1])
        entry = load_manifest(self.shipped_dir)["models"].get(name)
        if entry is None:
            raise ModelError(f"no scorer '{name}' installed or shipped in {self.shipped_dir}")
        return self.shipped_dir, dict(entry)

    def active_version(self, name: str) -> str:
        return model_version(name, self.active(name)[1])

    def listing(self) -> list[dict[str, Any]]:
        """Every scorer: the shipped one and the installed ones (newest last), which is active."""
        rows: list[dict[str, Any]] = []
        stacks = self._installs()["stacks"]
        try:
            shipped = load_manifest(self.shipped_dir)["models"]
        except ModelError:
            shipped = {}
        names = sorted({n for n, e in shipped.items() if e.get("kind") == "scorer"} | set(stacks))
        for name in names:
            stack = stacks.get(name) or []
            if name in shipped:
                e = shipped[name]
                rows.append(
                    {"name": name, "version": model_version(name, e), "source": SHIPPED,
                     "sha256": e.get("sha256"), "active": not stack, "installed_at": None}
                )  # fmt: skip
            for i, e in enumerate(stack):
                rows.append(
                    {"name": name, "version": model_version(name, e), "source": "installed",
                     "sha256": e.get("sha256"), "active": i == len(stack) - 1,
                     "installed_at": e.get("installed_at")}
                )  # fmt: skip
        return rows

    def history(self) -> list[dict[str, Any]]:
        return list(self._installs()["log"])

    # -- changes ---------------------------------------------------------------------
    def install(self, cand: Candidate, evidence: dict[str, Any], actor: str = "cli") -> dict[str, Any]:
        """Copy a candidate that passed the gate and make it active; returns the new entry.

        ``evidence`` (the figures the gate used) is kept in the install log."""
        doc = self._installs()
        version = cand.version
        stack = doc["stacks"].setdefault(cand.name, [])
        if any(model_version(cand.name, e) == version for e in stack):
            raise ModelError(f"model {version} is installed already (flexscore models list)")
        _, previous = self.active(cand.name)
        dest = self.root / version
        if dest.exists():
            shutil.rmtree(dest)  # left over from an interrupted install: not in any manifest
        dest.mkdir(parents=True)
        shutil.copy2(cand.file, dest / cand.file.name)
        shutil.copy2(cand.path / "report.json", dest / "report.json")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        entry = {
            **cand.entry,
            "file": f"{version}/{cand.file.name}",
            "version": version,
            "installed_at": now,
        }
        stack.append(entry)
        doc["log"].append(
            {"at": now, "action": "install", "actor": actor, "name": cand.name, "version": version,
             "previous": model_version(cand.name, previous), "evidence": evidence}
        )  # fmt: skip
        self._save(doc)
        prev = model_version(cand.name, previous)
        log.info("installed scorer %s (%s), previous %s kept", version, cand.name, prev)
        return entry

    def rollback(self, name: str | None = None, actor: str = "cli") -> tuple[str, str]:
        """Deactivate the newest install of ``name`` (default: the most recently installed
        scorer); returns (removed version, now active version)."""
        doc = self._installs()
        if name is None:
            installs = [e for e in doc["log"] if e["action"] == "install" and doc["stacks"].get(e["name"])]
            if not installs:
                raise ModelError("nothing to roll back: only the shipped models are in use")
            name = str(installs[-1]["name"])
        stack = doc["stacks"].get(name) or []
        if not stack:
            raise ModelError(f"nothing to roll back for {name}: the shipped model is in use")
        removed = stack.pop()
        removed_version = model_version(name, removed)
        if stack:
            now_version = model_version(name, stack[-1])
        else:
            shipped = load_manifest(self.shipped_dir)["models"].get(name) or {}
            now_version = model_version(name, shipped)
        doc["log"].append(
            {"at": datetime.now(UTC).isoformat(timespec="seconds"), "action": "rollback",
             "actor": actor, "name": name, "version": removed_version, "restored": now_version}
        )  # fmt: skip
        self._save(doc)
        log.info("rolled back scorer %s: %s → %s", name, removed_version, now_version)
        return removed_version, now_version


def heldout_from_store(store: Any, report: dict[str, Any], variant: str) -> tuple[list[int], Any, Any]:
    """(trial ids, features, labels) of the report's held-out trials that ``store`` still has
    with the same clinician label (newest label)."""
    import numpy as np

    from device.errors import StoreError
    from device.trial.features import trial_features

    ids: list[int] = []
    feats: list[Any] = []
    labels: list[int] = []
    held = report.get("heldout", {})
    for tid, lab in zip(held.get("trial_ids", []), held.get("labels", []), strict=False):
        got = store.labels_for(int(tid))
        if not got or got[-1].score != lab:
            continue
        try:
            trial = store.load_trial(int(tid))
            feats.append(trial_features(trial, variant))  # type: ignore[arg-type]
        except (StoreError, ModelError, ValueError):
            continue
        ids.append(int(tid))
        labels.append(int(lab))
    x = np.stack(feats) if feats else np.zeros((0, 200, 0), dtype=np.float32)
    return ids, x, np.array(labels, dtype=np.int64)


def install_candidate(
    path: str | Path,
    *,
    state_dir: str | Path,
    shipped_dir: str | Path,
    store: Any = None,
    actor: str = "cli",
    threads: int = 1,
) -> dict[str, Any]:
    """Check a candidate against the model in use and install it if it passes the gate.

    Returns ``{"installed": bool, "version", "problems", "heldout", "reference", "source"}``.
    The held-out figures are recomputed on this device when ``store`` still holds the
    report's held-out trials (``source: "store"``), else taken from the report
    (``"report"``, and then the report must have compared against the model in use).
    The reference figures are always recomputed here."""
    from device.scoring.candidate import compare, gate, load_candidate, reference_set
    from device.scoring.rnn import RNNScorer

    cand = load_candidate(path)
    models = InstalledModels(state_dir, shipped_dir)
    cur_dir, cur_entry = models.active(cand.name)
    cur_version = model_version(cand.name, cur_entry)
    problems: list[str] = []
    if cand.version == cur_version:
        raise ModelError(f"candidate {cand.version} is the model in use already")
    cand_model = RNNScorer(cand.path, cand.name, threads)
    cur_model = RNNScorer(cur_dir, cand.name, threads)
    try:
        rep = cand.report
        heldout: dict[str, Any]
        source = "report"
        if store is not None:
            ids, x, y = heldout_from_store(store, rep, cand.variant)
            if ids:
                source = "store"
                heldout = {"trial_ids": ids, "labels": y.tolist(), **compare(cand_model, cur_model, x, y)}
                missing = len(rep.get("heldout", {}).get("trial_ids", [])) - len(ids)
                if missing:
                    log.warning("%d held-out trial(s) of the report are not in this store", missing)
        if source == "report":
            heldout = dict(rep.get("heldout") or {})
            if not heldout.get("candidate") or not heldout.get("current"):
                raise ModelError(f"candidate report in {cand.path} has no held-out comparison")
            compared = rep.get("current", {})
            if compared.get("version") != cur_version or compared.get("sha256") != cur_entry.get("sha256"):
                problems.append(
                    f"the report compares the candidate with {rep.get('current', {}).get('version')}, "
                    f"but this device uses {cur_version}: re-run flexscore train --from-store against "
                    "the model in use (--current-models), or install on the device whose store it used"
                )
        rx, ry = reference_set(cand.variant)
        reference = compare(cand_model, cur_model, rx, ry)
    finally:
        cand_model.close()
        cur_model.close()
    problems += gate(heldout, reference)
    result: dict[str, Any] = {
        "installed": False,
        "name": cand.name,
        "version": cand.version,
        "current": cur_version,
        "source": source,
        "problems": problems,
        "heldout": {
            "n": len(heldout.get("labels", [])),
            "candidate": heldout.get("candidate"),
            "current": heldout.get("current"),
        },
        "reference": reference,
    }
    if store is not None:
        store.audit(
            actor,
            "model_install" if not problems else "model_install_refused",
            {"name": cand.name, "version": cand.version, "current": cur_version, "problems": problems},
        )
    if problems:
        log.warning("candidate %s refused: %s", cand.version, "; ".join(problems))
        return result
    evidence = {"source": source, "heldout": result["heldout"], "reference": reference}
    models.install(cand, evidence, actor)
    result["installed"] = True
    return result
