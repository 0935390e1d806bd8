#!/usr/bin/env python3
"""Load benchmark of the web page against the real daemon, on loopback.

Starts ``flexscore run`` on the bundled sample video (or ``--video``) in a temporary state
directory, logs in as the clinician and keeps trials running (started through the API
whenever the appliance is idle). Then, in four phases:

1. warm-up (not measured): the same web load as phase 3 for ``--warmup-s``, so first-use
   allocations (templates, thread stacks, encoder buffers) are not counted as growth;
2. baseline A (``--baseline-s``): trials only, no web load;
3. load: ``--viewers`` MJPEG viewers and ``--rps`` API requests per second (status, trial
   list, one trial, session, CSV export, the status page), trials going on; the first
   ``--ramp-s`` seconds are ramp-up (connections, buffers, threads), then ``--seconds`` are
   measured without a pause (RSS growth over the measured window; growth including the
   ramp-up is reported too);
4. baseline B (``--baseline-s``): trials only again.

Tracker fps comes from ``/api/status`` once a second; the no-load figure is the mean of both
baselines (so a noisy shared machine that drifts during the run does not count as load).
RSS is the daemon's ``VmRSS`` from /proc. It prints a table and one JSON document, and exits
1 when a criterion fails: fps drop > ``--max-drop`` (default 20 %), any failed request
(connection error, timeout, 5xx or an unexpected status), RSS growth over the load phase >
``--max-rss-mb`` (default 10 MB), a viewer that got no frames, or a daemon that did not stop
cleanly on SIGTERM. ``--no-timing-checks`` keeps only the behaviour checks (CI's short run).

Bounded: every request has a timeout, the request count is at most rps × seconds, and the
whole run is killed after warm-up + phases + 120 s.

    .venv/bin/python scripts/load_bench.py                # 60 s under load (about 2.5 min)
    .venv/bin/python scripts/load_bench.py --seconds 5 --baseline-s 3 --no-timing-checks
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 10.0
IDLE_STATES = ("idle", "result", "rejected", "cancelled", "error")
SETTLE_S = 3.0  # after the warm-up load, before the first baseline
URL_RE = re.compile(r"web page (http://[^/\s]+)/")


# --------------------------------------------------------------------------- HTTP helpers


@dataclass
class Client:
    """One keep-alive connection with the clinician's session cookie (one per thread)."""

    host: str
    port: int
    cookie: str = ""
    csrf: str = ""
    conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        hdrs = {"Cookie": self.cookie} if self.cookie else {}
        hdrs.update(headers or {})
        for attempt in (0, 1):  # one retry only for a keep-alive connection the server closed
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
                continue
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def login(host: str, port: int, password: str) -> tuple[str, str]:
    """(session cookie header, CSRF token) of a clinician session."""
    c = Client(host, port)
    try:
        status, hdrs, data = c.request("GET", "/api/session")
        cookie = _cookie(hdrs)
        token = json.loads(data)["csrf_token"]
        form = urllib.parse.urlencode({"password": password, "csrf_token": token, "next": "/"})
        c.cookie = cookie
        status, hdrs, _ = c.request(
            "POST", "/login", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 302:
            raise SystemExit(f"load_bench: clinician login failed with HTTP {status}")
        c.cookie = _cookie(hdrs)
        status, _, data = c.request("GET", "/api/session")
        doc = json.loads(data)
        if doc.get("role") != "clinician":
            raise SystemExit("load_bench: the login did not give a clinician session")
        return c.cookie, str(doc["csrf_token"])
    finally:
        c.close()


def _cookie(headers: dict[str, str]) -> str:
    raw = headers.get("set-cookie", "")
    return raw.split(";", 1)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- load pieces


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, name: str, good: bool, detail: str = "", latency_ms: float | None = None) -> None:
        with self.lock:
            (self.ok if good else self.failed)[name] += 1
            if not good and len(self.errors) < 20:
                self.errors.append(f"{name}: {detail}")
            if latency_ms is not None:
                self.latencies_ms.append(latency_ms)


class Monitor(threading.Thread):
    """Once a second: fps and state from /api/status, the daemon's RSS, and a new trial when idle."""

    def __init__(self, host: str, port: int, cookie: str, csrf: str, pid: int, tally: Tally) -> None:
        super().__init__(name="monitor", daemon=True)
        self.client = Client(host, port, cookie)
        self.csrf, self.pid, self.tally = csrf, pid, tally
        self.stop = threading.Event()
        self.phase = "warmup"
        self.samples: list[tuple[str, float, float, int, str]] = []  # phase, t, fps, rss_kb, state
        self.cpu: list[tuple[str, float, float]] = []  # phase, t, the daemon's CPU seconds
        self.trials_started = 0
        self.start_refused = 0

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self.client.close()

    def _loop(self) -> None:
        while not self.stop.wait(1.0):
            try:
                status, _, data = self.client.request("GET", "/api/status")
            except OSError as exc:
                self.tally.record("monitor /api/status", False, repr(exc))
                self.client.close()
                continue
            if status != 200:
                self.tally.record("monitor /api/status", False, f"HTTP {status}")
                continue
            doc = json.loads(data)
            self.samples.append(
                (self.phase, time.monotonic(), float(doc["fps"]), rss_kb(self.pid), str(doc["state"]))
            )
            self.cpu.append((self.phase, time.monotonic(), cpu_seconds(self.pid)))
            if doc["state"] in IDLE_STATES:
                self._start_trial()

    def _start_trial(self) -> None:
        body = json.dumps({"patient_code": "LOAD01"}).encode()  # side not set: not checked
        hdrs = {"Content-Type": "application/json", "X-CSRF-Token": self.csrf}
        try:
            status, _, _ = self.client.request("POST", "/api/trials/start", body, hdrs)
        except OSError as exc:
            self.tally.record("POST /api/trials/start", False, repr(exc))
            self.client.close()
            return
        if status == 202:
            self.trials_started += 1
            self.tally.record("POST /api/trials/start", True)
        elif status == 409:  # the state moved on between the two requests
            self.start_refused += 1
            self.tally.record("POST /api/trials/start", True)
        else:
            self.tally.record("POST /api/trials/start", False, f"HTTP {status}")


class Viewer(threading.Thread):
    """One MJPEG viewer reading the live stream as fast as it comes."""

    def __init__(self, host: str, port: int, cookie: str, stop: threading.Event, tally: Tally) -> None:
        super().__init__(name="viewer", daemon=True)
        self.host, self.port, self.cookie, self.stop, self.tally = host, port, cookie, stop, tally
        self.frames = 0
        self.bytes = 0
        self.error: str | None = None

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
        try:
            conn.request("GET", "/stream.mjpg", headers={"Cookie": self.cookie})
            resp = conn.getresponse()
            if resp.status != 200:
                self.error = f"HTTP {resp.status}"
                return
            tail = b""
            while not self.stop.is_set():
                chunk = resp.read1(65536)
                if not chunk:
                    self.error = "stream ended early"
                    return
                self.bytes += len(chunk)
                buf = tail + chunk
                self.frames += buf.count(b"--frame\r\n")
                tail = buf[-8:]
        except OSError as exc:
            self.error = repr(exc)
        finally:
            conn.close()
            self.tally.record("GET /stream.mjpg", self.error is None and self.frames > 0, self.error or "")


def api_paths(last_trial: int | None) -> list[tuple[str, tuple[int, ...]]]:
    """The request mix (path, accepted statuses) the API load cycles through."""
    paths: list[tuple[str, tuple[int, ...]]] = [
        ("/api/status", (200,)),
        ("/api/trials?limit=20", (200,)),
        ("/api/session", (200,)),
        ("/api/status", (200,)),
        ("/export/trials.csv?status=scored", (200,)),
        ("/status", (200,)),
        ("/api/trials?status=scored&limit=5", (200,)),
    ]
    if last_trial is not None:
        paths.append((f"/api/trials/{last_trial}", (200,)))
    return paths


def api_load(
    host: str, port: int, cookie: str, rps: float, seconds: float, tally: Tally, workers: int = 4
) -> int:
    """``rps`` GET requests per second for ``seconds`` over ``workers`` connections; the count sent."""
    total = int(rps * seconds)
    t0 = time.monotonic()
    lock = threading.Lock()
    next_i = [0]
    probe = Client(host, port, cookie)
    try:
        _, _, data = probe.request("GET", "/api/trials?limit=1")
        rows = json.loads(data).get("trials") or []
    finally:
        probe.close()
    mix = api_paths(rows[0]["id"] if rows else None)

    def worker() -> None:
        client = Client(host, port, cookie)
        try:
            while True:
                with lock:
                    i = next_i[0]
                    if i >= total:
                        return
                    next_i[0] += 1
                due = t0 + i / rps
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                path, accepted = mix[i % len(mix)]
                name = "GET " + path.split("?")[0]
                t = time.monotonic()
                try:
                    status, _, _ = client.request("GET", path)
                except OSError as exc:
                    tally.record(name, False, repr(exc))
                    client.close()
                    continue
                ms = (time.monotonic() - t) * 1000
                tally.record(name, status in accepted, f"HTTP {status}", ms)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 4 * TIMEOUT_S)
    return min(next_i[0], total)


def web_load(
    host: str,
    port: int,
    cookie: str,
    args: argparse.Namespace,
    seconds: float,
    tally: Tally,
    viewer_cookies: list[str],
) -> tuple[int, list[Viewer]]:
    """``args.viewers`` MJPEG viewers (one session each, as separate tablets: one session
    may hold 2 streams) and ``args.rps`` API requests/s for ``seconds``."""
    stop_viewers = threading.Event()
    viewers = [Viewer(host, port, vc, stop_viewers, tally) for vc in viewer_cookies[: args.viewers]]
    for v in viewers:
        v.start()
    try:
        sent = api_load(host, port, cookie, args.rps, seconds, tally)
    finally:
        stop_viewers.set()
        for v in viewers:
            v.join(2 * TIMEOUT_S)
    return sent, viewers


# --------------------------------------------------------------------------- daemon


def write_config(path: Path, video: str, viewers: int, paced: bool) -> None:
    path.write_text(
        "[camera]\n"
        'backend = "file"\n'
        f"path = {json.dumps(video)}\n"
        f"paced = {'true' if paced else 'false'}\n"
        "[web]\n"
        'host = "127.0.0.1"\n'
        f"max_streams = {max(viewers + 1, 3)}\n",
        encoding="utf-8",
    )


def start_daemon(cfg: Path, state: Path, password: str) -> tuple[subprocess.Popen[str], str, int]:
    env = dict(os.environ, FLEXSCORE_PASSWORD=password, GPIOZERO_PIN_FACTORY="mock", PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable, "-c", "import sys; from device.cli import main; sys.exit(main(sys.argv[1:]))",
        "run", "--config", str(cfg), "--state-dir", str(state), "--port", "0",
    ]  # fmt: skip
    out_path = state / "daemon.out"
    with open(state / "daemon.log", "w") as log_file, open(out_path, "w") as out_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out_file, stderr=log_file, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        m = URL_RE.search(out_path.read_text(errors="replace"))
        if m:
            host, port = urllib.parse.urlsplit(m.group(1)).netloc.rsplit(":", 1)
            return proc, host, int(port)
        time.sleep(0.2)
    proc.kill()
    proc.wait(10)
    log = (state / "daemon.log").read_text(errors="replace")[-2000:]
    raise SystemExit(f"load_bench: the daemon did not start:\n{log}")


def stop_daemon(proc: subprocess.Popen[str]) -> int | None:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return None


# --------------------------------------------------------------------------- main


def cpu_share(cpu: list[tuple[str, float, float]], phase: str) -> float:
    """The daemon's CPU use during ``phase`` in cores (1.0 = one core busy all the time)."""
    rows = [c for c in cpu if c[0] == phase]
    if len(rows) < 2 or rows[-1][1] <= rows[0][1]:
        return 0.0
    return (rows[-1][2] - rows[0][2]) / (rows[-1][1] - rows[0][1])


def mean_fps(samples: list[tuple[str, float, float, int, str]], phase: str, skip: int) -> float:
    vals = [s[2] for s in samples if s[0] == phase][skip:]
    return statistics.fmean(vals) if vals else 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    from device.data import SAMPLE_VIDEO

    video = str(Path(args.video).resolve()) if args.video else str(SAMPLE_VIDEO)
    password = secrets.token_urlsafe(12)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="flexscore-load-") as tmp:
        state = Path(tmp)
        cfg = state / "bench.toml"
        write_config(cfg, video, args.viewers, args.paced)
        t_start = time.monotonic()
        proc, host, port = start_daemon(cfg, state, password)
        budget = args.warmup_s + SETTLE_S + 2 * args.baseline_s + args.ramp_s + args.seconds + 120
        killer = threading.Timer(budget, proc.kill)
        killer.daemon = True
        killer.start()
        exit_code: int | None = None
        try:
            cookie, csrf = login(host, port, password)
            viewer_cookies = [login(host, port, password)[0] for _ in range(args.viewers)]
            mon = Monitor(host, port, cookie, csrf, proc.pid, tally)
            mon.start()
            web_load(host, port, cookie, args, args.warmup_s, tally, viewer_cookies)
            mon.phase = "settle"
            time.sleep(SETTLE_S)
            mon.phase = "baseline_a"
            time.sleep(args.baseline_s)
            mon.phase = "ramp"
            rss_before_load = rss_kb(proc.pid)
            marks: dict[str, int] = {}

            def ramp_done() -> None:  # the same load goes on; from here on it is measured
                marks["rss"] = rss_kb(proc.pid)
                mon.phase = "load"

            ramp = threading.Timer(args.ramp_s, ramp_done)
            ramp.start()
            sent, viewers = web_load(
                host, port, cookie, args, args.ramp_s + args.seconds, tally, viewer_cookies
            )
            ramp.cancel()
            rss_load_start = marks.get("rss", rss_before_load)
            rss_load_end = rss_kb(proc.pid)
            mon.phase = "baseline_b"
            time.sleep(args.baseline_s)
            mon.stop.set()
            mon.join(2 * TIMEOUT_S)
            check = Client(host, port, cookie)
            try:
                _, _, data = check.request("GET", "/api/trials?patient=LOAD01&limit=500")
                stored = json.loads(data)["trials"]
            finally:
                check.close()
        finally:
            exit_code = stop_daemon(proc)
            killer.cancel()
        elapsed = time.monotonic() - t_start
    skip = 2  # the daemon's fps window (2 s) still holds frames of the previous phase
    fps_a = mean_fps(mon.samples, "baseline_a", skip)
    fps_b = mean_fps(mon.samples, "baseline_b", skip)
    fps_load = mean_fps(mon.samples, "load", skip)
    fps_base = statistics.fmean([f for f in (fps_a, fps_b) if f > 0] or [0.0])
    drop = 1.0 - fps_load / fps_base if fps_base > 0 else 1.0
    rss_load = [s[3] for s in mon.samples if s[0] == "load"]
    lat = sorted(tally.latencies_ms)
    statuses = Counter(str(t.get("status")) for t in stored)
    result: dict[str, Any] = {
        "video": Path(video).name,
        "paced_camera": args.paced,
        "seconds_under_load": args.seconds,
        "viewers": args.viewers,
        "api_rps_target": args.rps,
        "api_requests_sent": sent,
        "api_rps_achieved": round(sent / (args.ramp_s + args.seconds), 2),
        "requests_ok": sum(tally.ok.values()),
        "requests_failed": sum(tally.failed.values()),
        "failures": tally.errors,
        "latency_ms_p50": round(lat[len(lat) // 2], 1) if lat else None,
        "latency_ms_p95": round(lat[int(len(lat) * 0.95)], 1) if lat else None,
        "viewer_frames": [v.frames for v in viewers],
        "viewer_fps": [round(v.frames / (args.ramp_s + args.seconds), 1) for v in viewers],
        "viewer_errors": [v.error for v in viewers if v.error],
        "fps_baseline_a": round(fps_a, 2),
        "fps_baseline_b": round(fps_b, 2),
        "fps_no_load": round(fps_base, 2),
        "fps_under_load": round(fps_load, 2),
        "fps_drop": round(drop, 4),
        "daemon_cpu_cores_baseline_a": round(cpu_share(mon.cpu, "baseline_a"), 3),
        "daemon_cpu_cores_under_load": round(cpu_share(mon.cpu, "load"), 3),
        "daemon_cpu_cores_baseline_b": round(cpu_share(mon.cpu, "baseline_b"), 3),
        "rss_mb_load_start": round(rss_load_start / 1024, 1),
        "rss_mb_load_end": round(rss_load_end / 1024, 1),
        "rss_mb_load_peak": round(max(rss_load or [rss_load_end]) / 1024, 1),
        "rss_growth_mb": round((rss_load_end - rss_load_start) / 1024, 2),
        "rss_mb_before_load": round(rss_before_load / 1024, 1),
        "rss_growth_incl_ramp_mb": round((rss_load_end - rss_before_load) / 1024, 2),
        "rss_mb_timeline": [  # every 5th sample: (phase, seconds since the first, MB)
            (s[0], round(s[1] - mon.samples[0][1]), round(s[3] / 1024, 1)) for s in mon.samples[::5]
        ],
        "trials_started": mon.trials_started,
        "trials_stored": dict(statuses),
        "rejection_reasons": dict(
            Counter(str(r.get("code")) for t in stored if t.get("status") == "rejected" for r in t["reasons"])
        ),
        "daemon_exit_code": exit_code,
        "elapsed_s": round(elapsed, 1),
    }
    checks = {
        "no_failed_request": result["requests_failed"] == 0,
        "every_viewer_got_frames": all(f > 0 for f in result["viewer_frames"])
        and not result["viewer_errors"],
        "trials_ran": mon.trials_started > 0,
        "all_requests_sent": sent == int(args.rps * (args.ramp_s + args.seconds)),
        "daemon_stopped_cleanly": exit_code == 0,
    }
    if not args.no_timing_checks:
        checks["fps_drop_within_limit"] = drop <= args.max_drop
        checks["rss_growth_within_limit"] = result["rss_growth_mb"] <= args.max_rss_mb
    result["checks"] = checks
    result["passed"] = all(checks.values())
    return result


def print_table(r: dict[str, Any]) -> None:
    rows = [
        ("tracker fps, no web load (mean of baselines)", f"{r['fps_no_load']:.1f}"),
        ("tracker fps, under load", f"{r['fps_under_load']:.1f}"),
        ("fps drop", f"{100 * r['fps_drop']:.1f} %"),
        (
            "daemon CPU, cores (baseline A / load / B)",
            f"{r['daemon_cpu_cores_baseline_a']} / {r['daemon_cpu_cores_under_load']} / "
            f"{r['daemon_cpu_cores_baseline_b']}",
        ),
        ("API requests sent / failed", f"{r['api_requests_sent']} / {r['requests_failed']}"),
        ("API latency p50 / p95", f"{r['latency_ms_p50']} / {r['latency_ms_p95']} ms"),
        ("MJPEG viewers, frames/s each", ", ".join(f"{v:g}" for v in r["viewer_fps"])),
        ("RSS before load / after ramp-up", f"{r['rss_mb_before_load']} / {r['rss_mb_load_start']} MB"),
        (
            "RSS at measured start / end / growth",
            f"{r['rss_mb_load_start']} / {r['rss_mb_load_end']} / {r['rss_growth_mb']:+} MB",
        ),
        ("trials started / stored", f"{r['trials_started']} / {r['trials_stored']}"),
        ("daemon exit code after SIGTERM", str(r["daemon_exit_code"])),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}", file=sys.stderr)
    for name, ok in r["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of the load phase")
    ap.add_argument("--baseline-s", type=float, default=20.0, help="each no-load phase (before, after)")
    ap.add_argument("--warmup-s", type=float, default=10.0)
    ap.add_argument(
        "--ramp-s", type=float, default=15.0, help="load before the measured window (not measured)"
    )
    ap.add_argument("--viewers", type=int, default=5)
    ap.add_argument("--rps", type=float, default=20.0, help="API requests per second")
    ap.add_argument("--video", help="camera video (default: the bundled sample)")
    ap.add_argument(
        "--paced",
        action="store_true",
        help="deliver the video at its frame rate (default: as fast as the tracker takes it)",
    )
    ap.add_argument("--max-drop", type=float, default=0.20)
    ap.add_argument("--max-rss-mb", type=float, default=10.0)
    ap.add_argument("--no-timing-checks", action="store_true", help="check behaviour only (CI)")
    ap.add_argument("--json", metavar="FILE", help="also write the result here")
    args = ap.parse_args(argv)
    if not (0 < args.seconds <= 600 and 0 < args.rps <= 200 and 0 <= args.viewers <= 30):
        ap.error("--seconds must be in (0, 600], --rps in (0, 200], --viewers in [0, 30]")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up: stop the daemon
    result = run(args)
    print_table(result)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
