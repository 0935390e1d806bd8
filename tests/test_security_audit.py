"""scripts/audit_deps.py: what counts as a device dependency, and that "not audited" never passes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit_deps.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = mod
    spec.loader.exec_module(mod)
    return mod


audit = _load()


def test_device_closure_has_the_runtime_and_no_dev_tools() -> None:
    pins = audit.closure("flexscore", {"device"})
    for name in ("flask", "werkzeug", "waitress", "numpy", "gpiozero", "jinja2"):
        assert name in pins, name
    for dev_only in ("pytest", "ruff", "mypy", "schemathesis", "hypothesis", "pip-audit", "playwright"):
        assert dev_only not in pins, dev_only
    assert "flexscore" not in pins
    assert all(v and v[0].isdigit() for v in pins.values())


def test_skipped_packages_are_not_a_pass(capsys: pytest.CaptureFixture[str]) -> None:
    deps = [
        {"name": "flask", "version": "3.1.3", "vulns": []},
        {"name": "numpy", "version": "2.0", "vulns": [], "skip_reason": "Dependency not found on PyPI"},
    ]
    assert audit.summarize(deps, "pypi") == audit.EXIT_UNREACHABLE
    assert "numpy NOT audited" in capsys.readouterr().err
    assert audit.summarize(deps[:1], "pypi") == 0
    bad = [{"name": "werkzeug", "version": "0.1", "vulns": [{"id": "PYSEC-1", "fix_versions": ["3.0"]}]}]
    assert audit.summarize(bad, "pypi") == audit.EXIT_VULNERABLE
    assert "PYSEC-1" in capsys.readouterr().err


def test_an_unreachable_database_is_said_loudly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(audit, "run_pip_audit", lambda *a: (None, "Failed to resolve 'api.osv.dev'"))
    assert audit.main([]) == audit.EXIT_UNREACHABLE
    assert "NOT audited" in capsys.readouterr().err
