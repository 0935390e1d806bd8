"""The daemon's per-frame path timed on its own (the ``daemon`` section of ``flexscore bench``).

Decode → tracker → recorder → live view at 640×480, in a fresh child process so that its
peak memory is the loop's own. Builds the same parts :class:`device.app.FlexscoreApp` wires
(file source, tracker, recorder with the real scorer, live frames) without the web server,
store or panel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from device.config import Config, ModelsConfig, replace
from device.errors import FlexscoreError


def bench_tracking_loop(cfg: Config, video: str, seconds: float = 12.0, fps: float = 30.0) -> dict[str, Any]:
    """Achieved fps against a camera delivering ``fps``, CPU share (process CPU time / wall
    time, 1.0 = one core), peak RSS, and the unpaced maximum fps, measured in a child
    process. One trial is recorded and scored during the run."""
    args = json.dumps({"video": str(video), "seconds": seconds, "fps": fps, "models": cfg.models.__dict__})
    code = (
        "import sys, json; from device.tools.loop_bench import bench_loop_child; "
        "print(json.dumps(bench_loop_child(sys.argv[1])))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, args], capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise FlexscoreError(f"tracking-loop benchmark failed: {proc.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def peak_rss_kb() -> int:
    """This process's peak resident set size in KiB, since it started its program.

    ``/proc/self/status`` VmHWM is the high-water mark of the current address space. The
    classic ``getrusage().ru_maxrss`` is not: Linux carries the parent's peak over into a
    child across fork + exec, so a child started by a big process (the benchmark holding 300
    decoded frames) reported the parent's 1.2 GB as its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def bench_loop_child(arg: str) -> dict[str, Any]:
    """The measurement itself (run by :func:`bench_tracking_loop` in the child)."""
    from device.camera import FileSource
    from device.scoring.decide import Decider
    from device.trial.recorder import TrialRecorder
    from device.vision.tracker import build_tracker
    from device.web.live import LiveFrames

    spec = json.loads(arg)
    cfg = Config()
    cfg = replace(cfg, models=ModelsConfig(**spec["models"]))
    source = FileSource(spec["video"], loop=True, paced=False, fit=(640, 480))
    source.open()

    def next_frame() -> Any:
        frame = source.read(timeout=1.0)
        assert frame is not None
        return frame.rgb

    decider = Decider(cfg)
    recorder = TrialRecorder(decider.score, trial_config=cfg.trial)
    live = LiveFrames()
    with build_tracker(cfg) as tracker:
        # unpaced: the most the loop can do
        t0 = time.perf_counter()
        n_free = 0
        while time.perf_counter() - t0 < 3.0:
            f = next_frame()
            obs = tracker.process_one(f, n_free / spec["fps"])
            live.put(f, obs)
            n_free += 1
        max_fps = n_free / (time.perf_counter() - t0)
        # paced like a camera
        recorder.start(origin="bench")
        period = 1.0 / spec["fps"]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        n = late = 0
        while True:
            due = wall0 + n * period
            now = time.perf_counter()
            if now - wall0 >= spec["seconds"]:
                break
            if due > now:
                time.sleep(due - now)
            elif now - due > period:
                late += 1
            f = next_frame()
            obs = tracker.process_one(f, n * period)
            recorder.on_observation(obs)
            live.put(f, obs)
            n += 1
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
    state = str(recorder.state)
    source.close()
    recorder.close()
    decider.close()
    rss_kb = peak_rss_kb()
    return {
        "resolution": "640x480",
        "models": f"{cfg.models.complexity} {cfg.models.precision}",
        "camera_fps": spec["fps"],
        "achieved_fps": round(n / wall, 2),
        "late_frames": late,
        "cpu_share": round(cpu / wall, 3),
        "max_fps_unpaced": round(max_fps, 1),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "trial_state_at_end": state,
    }
