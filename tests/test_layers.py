"""The package's layers, read from the source with ``ast`` (nothing is imported).

* The runtime never imports the workstation tooling: no module outside ``device/tools/``
  imports ``device.tools`` — not at module level, not inside a function — or names it in a
  string (an ``importlib``/``getattr`` look-up). The one exception is ``device/cli.py``, the
  entry point, whose list of command modules names ``device.tools.cli``.
* ``device/tools/reference_hands.py`` runs in the MediaPipe venv, which has no ``device``: it
  imports nothing of the package.
* Nothing in ``device/store``, ``device/scoring`` or ``device/vision`` imports ``device/web``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DEVICE = Path(__file__).resolve().parents[1] / "device"
TOOLS = "device.tools"
ENTRY_POINT = "device.cli"  # lists the command modules by name, tools' among them


def module_name(path: Path, root: Path = DEVICE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = DEVICE) -> dict[str, Path]:
    """Every module of the package at ``root`` (a checkout's device/ or an installed one)."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports(name: str, path: Path) -> set[str]:
    """Every module ``path`` imports anywhere in its body (``from a import b`` gives a and a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def strings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_walk_sees_the_whole_package() -> None:
    found = modules()
    assert {"device.app", "device.scoring.decide", "device.tools.bench", "device.tools.cli"} <= set(found)
    # and it sees imports inside functions (device.tools.cli imports the bench lazily)
    assert "device.tools.bench" in imports("device.tools.cli", found["device.tools.cli"])


def runtime_modules_reaching_tools(root: Path = DEVICE) -> dict[str, list[str]]:
    """Runtime modules that import ``device.tools`` (or name it in a string), with what."""
    offenders = {}
    for name, path in modules(root).items():
        if within(name, TOOLS) or name == ENTRY_POINT:
            continue
        bad = sorted(m for m in imports(name, path) if within(m, TOOLS))
        bad += sorted(s for s in strings(path) if within(s, TOOLS) or s.startswith("device/tools"))
        if bad:
            offenders[name] = bad
    return offenders


def test_the_runtime_never_imports_the_tooling() -> None:
    assert runtime_modules_reaching_tools() == {}


def test_the_rule_catches_a_lazy_import_and_a_lookup_by_name(tmp_path: Path) -> None:
    pkg = tmp_path / "device"
    (pkg / "scoring").mkdir(parents=True)
    (pkg / "tools").mkdir()
    for init in (pkg / "__init__.py", pkg / "scoring" / "__init__.py", pkg / "tools" / "__init__.py"):
        init.write_text("")
    (pkg / "tools" / "bench.py").write_text("from device.scoring import decide\n")
    (pkg / "scoring" / "decide.py").write_text("def f():\n    from ..tools import bench\n")
    (pkg / "app.py").write_text("import importlib\nmod = importlib.import_module('device.tools.bench')\n")
    assert runtime_modules_reaching_tools(pkg) == {
        "device.app": ["device.tools.bench"],
        "device.scoring.decide": ["device.tools", "device.tools.bench"],
    }


def test_the_entry_point_reaches_the_tooling_only_through_its_command_list() -> None:
    from device.cli import COMMAND_MODULES

    path = modules()[ENTRY_POINT]
    assert not any(within(m, TOOLS) for m in imports(ENTRY_POINT, path))
    assert [m for m in COMMAND_MODULES if within(m, TOOLS)] == ["device.tools.cli"]


def test_the_mediapipe_runner_imports_nothing_of_the_package() -> None:
    path = DEVICE / "tools" / "reference_hands.py"
    assert not any(within(m, "device") for m in imports("device.tools.reference_hands", path))


def _web_importers(package: str) -> dict[str, list[str]]:
    return {
        name: sorted(m for m in imports(name, path) if within(m, "device.web"))
        for name, path in modules().items()
        if within(name, package) and any(within(m, "device.web") for m in imports(name, path))
    }


@pytest.mark.parametrize(
    "package",
    [
        "device.vision",
        "device.store",
        "device.scoring",
        "device.items",
        "device.appliance",
    ],
)
def test_store_scoring_and_vision_never_import_the_web(package: str) -> None:
    assert _web_importers(package) == {}
