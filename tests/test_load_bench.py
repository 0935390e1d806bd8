"""The load benchmark's behaviour checks on a short run, and the live view's encode cap.

Timing figures (fps drop, RSS growth) are only measured by the full benchmark
(``scripts/load_bench.py``, figures in docs/RELIABILITY.md); here nothing is timed: the short
run must answer every request, feed every viewer, run trials and stop cleanly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from device.web.live import LiveFrames

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "load_bench.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("load_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["load_bench"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_short_load_run_fails_no_request_and_stops_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    argv = ["--seconds", "4", "--ramp-s", "1", "--baseline-s", "2", "--warmup-s", "3", "--viewers", "3"]
    rc = bench.main([*argv, "--rps", "10", "--no-timing-checks"])
    out = capsys.readouterr().out
    import json

    result = json.loads(out[out.index("{") :])
    assert result["requests_failed"] == 0, result["failures"]
    assert result["api_requests_sent"] == 50
    assert all(f > 0 for f in result["viewer_frames"]) and not result["viewer_errors"]
    assert result["trials_started"] >= 1
    assert result["daemon_exit_code"] == 0
    assert "fps_drop_within_limit" not in result["checks"]  # never a timed assert in CI
    assert rc == 0


def test_encodes_are_capped_however_many_viewers_ask() -> None:
    now = [0.0]
    live = LiveFrames(max_encode_fps=10.0, clock=lambda: now[0])
    rgb = np.zeros((24, 32, 3), np.uint8)
    seen = {}
    for step in range(100):  # 1 s of a 100 fps tracker and 5 viewers asking after every frame
        live.put(rgb)
        now[0] = step * 0.01
        for viewer in range(5):
            frame = live.latest_jpeg(newer_than=seen.get(viewer, -1))
            if frame is not None:
                seen[viewer] = frame.seq
    assert live.encodes <= 11  # 10 per second, not 500
    assert all(s >= 90 for s in seen.values())  # every viewer still got a recent frame
    live.put(rgb)
    latest = live.latest_jpeg()
    assert latest is not None and latest.seq >= seen[0]
