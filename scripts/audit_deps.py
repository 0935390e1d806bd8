#!/usr/bin/env python3
"""pip-audit of what the *device* installs (the package with its ``device`` extra).

The dependency closure is read from the installed metadata of this venv (``flexscore`` with
the ``device`` extra, recursively), pinned to the installed versions, and handed to
``pip-audit --no-deps`` with PyPI's vulnerability data, else OSV's. Dev-only tools (pytest,
ruff, schemathesis, …) are not part of the device and are not audited here.

Exit status: 0 no known vulnerability; 1 vulnerabilities found (listed); 3 the
vulnerability database could not be reached, or answered for only some packages (a PyPI
mirror without the JSON API answers "not found" for every package) — said loudly, never
silently passed as "no vulnerabilities"; the test
command turns that into a warning unless ``FLEXSCORE_AUDIT=required``. ``picamera2`` and
other Raspberry Pi OS packages come from apt, not PyPI: ``apt`` keeps those patched.

    .venv/bin/python scripts/audit_deps.py [--extra device] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXIT_VULNERABLE = 1
EXIT_UNREACHABLE = 3


def closure(root: str, extras: set[str]) -> dict[str, str]:
    """{canonical name: installed version} of ``root[extras]`` and everything it needs here."""
    found: dict[str, str] = {}
    todo: list[tuple[str, set[str]]] = [(root, extras)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, want = todo.pop()
        key = (canonicalize_name(name), frozenset(want))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a marker-excluded or optional dependency that is not installed here
        if canonicalize_name(name) != canonicalize_name(root):
            found[canonicalize_name(name)] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in want] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, set(req.extras)))
    return dict(sorted(found.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extra", default="device", help="extra of flexscore that the device installs")
    ap.add_argument("--json", metavar="FILE", help="write pip-audit's JSON report here")
    ap.add_argument(
        "--timeout", type=int, default=30, help="seconds per request to the vulnerability service"
    )
    args = ap.parse_args(argv)
    pins = closure("flexscore", {args.extra} if args.extra else set())
    if not pins:
        print("audit: flexscore is not installed in this environment", file=sys.stderr)
        return 2
    problems: list[str] = []
    for service in ("pypi", "osv"):
        report, problem = run_pip_audit(pins, service, args.timeout, args.json)
        if report is None:
            problems.append(f"{service}: {problem}")
            continue
        deps = report.get("dependencies", [])
        audited = [d for d in deps if not d.get("skip_reason")]
        if not audited:  # e.g. a PyPI mirror without the JSON API answers 404 for every package
            problems.append(
                f"{service}: no dependency could be looked up ({deps[0]['skip_reason'] if deps else '-'})"
            )
            continue
        return summarize(deps, service)
    print(
        f"audit: THE VULNERABILITY DATABASE COULD NOT BE REACHED — the {len(pins)} device "
        f"dependencies were NOT audited. Tried: {'; '.join(problems)}",
        file=sys.stderr,
    )
    return EXIT_UNREACHABLE


def run_pip_audit(
    pins: dict[str, str], service: str, timeout: int, json_out: str | None
) -> tuple[dict[str, Any] | None, str]:
    """(pip-audit's JSON report, "") or (None, what went wrong)."""
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "device-requirements.txt"
        reqs.write_text("".join(f"{n}=={v}\n" for n, v in pins.items()), encoding="utf-8")
        out = Path(json_out) if json_out else Path(tmp) / "audit.json"
        cmd = [
            sys.executable, "-m", "pip_audit", "--requirement", str(reqs), "--no-deps", "--disable-pip",
            "--vulnerability-service", service, "--timeout", str(timeout), "--progress-spinner", "off",
            "--format", "json", "--output", str(out),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.exists() and out.stat().st_size:
            try:
                return json.loads(out.read_text(encoding="utf-8")), ""
            except ValueError:
                pass
    err = (proc.stderr or proc.stdout).strip().splitlines()
    return None, (" | ".join(err[-2:]) if err else f"pip-audit exit code {proc.returncode}")[:300]


def summarize(deps: list[dict[str, Any]], service: str) -> int:
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for dep in vulnerable:
        for v in dep["vulns"]:
            fixes = ", ".join(v.get("fix_versions") or []) or "no fix yet"
            print(f"audit: {dep['name']} {dep['version']}: {v['id']} (fixed in: {fixes})", file=sys.stderr)
    for dep in skipped:
        print(f"audit: {dep['name']} NOT audited: {dep['skip_reason']}", file=sys.stderr)
    print(
        f"audit: {len(deps) - len(skipped)} of {len(deps)} device dependencies checked against "
        f"{service}: {len(vulnerable)} with known vulnerabilities",
        file=sys.stderr,
    )
    if vulnerable:
        return EXIT_VULNERABLE
    return EXIT_UNREACHABLE if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
