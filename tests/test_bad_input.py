"""Bad input, property-based: API payloads, config files, feature extraction, video files.

Each property is "a clear :class:`FlexscoreError` (or a 4xx answer), never a crash, and
nothing stored is lost". Budgets come from the ``flexscore-ci`` hypothesis profile
(tests/test_bad_input_support.py); ``FLEXSCORE_HYPOTHESIS=thorough`` fuzzes longer.
"""

from __future__ import annotations

import dataclasses
import math
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_bad_input_support import BUDGET, SMALL_BUDGET, json_values, to_toml, toml_values
from test_web_support import csrf, login, make_app, seeded_fake

from device.config import Config, config_from_dict, load_config
from device.errors import ConfigError, FlexscoreError, InputError, VideoError
from device.trial.features import frame_features, normalize_landmarks, resample_landmarks, trial_features
from device.trial.types import Trial
from device.web import shutdown
from device.web.fake import FakeServices

# --------------------------------------------------------------------------- config files


def _sections() -> dict[str, dict[str, dataclasses.Field[Any]]]:
    out = {}
    for f in dataclasses.fields(Config):
        tp = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if dataclasses.is_dataclass(tp):
            out[f.name] = {g.name: g for g in dataclasses.fields(tp)}
    return out


SECTIONS = _sections()
section_names = st.sampled_from(sorted(SECTIONS)) | st.text(min_size=1, max_size=8)


@st.composite
def config_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly real section and key names (so values reach validation), with random values."""
    doc: dict[str, Any] = {}
    for name in draw(st.lists(section_names, max_size=3, unique=True)):
        keys = sorted(SECTIONS.get(name, {})) or ["x"]
        table = draw(
            st.dictionaries(st.sampled_from(keys) | st.text(min_size=1, max_size=8), toml_values, max_size=4)
        )
        doc[name] = table if draw(st.booleans()) or not table else next(iter(table.values()))
    return doc


def _load(tmp_path: Path, text: str | bytes) -> Config | None:
    path = tmp_path / "flexscore.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    try:
        return load_config(path)
    except ConfigError as exc:
        assert str(exc).strip(), "a ConfigError must say what is wrong"
        assert "Traceback" not in str(exc)
        return None


@BUDGET
@given(doc=config_docs())
def test_random_config_documents_give_config_error_or_a_valid_config(
    tmp_path_factory: pytest.TempPathFactory, doc: dict[str, Any]
) -> None:
    cfg = _load(tmp_path_factory.mktemp("cfg"), to_toml(doc))
    if cfg is not None:  # accepted: every value made it through validation as its declared type
        assert isinstance(cfg, Config)
        for name in doc:
            assert name in SECTIONS


@BUDGET
@given(doc=st.dictionaries(st.sampled_from(sorted(SECTIONS)), json_values, max_size=3))
def test_config_from_any_python_values_gives_config_error(doc: dict[str, Any]) -> None:
    try:
        config_from_dict(doc)
    except ConfigError as exc:
        assert str(exc)


@SMALL_BUDGET
@given(raw=st.binary(max_size=300) | st.text(max_size=200))
def test_config_files_of_random_bytes_or_text(tmp_path_factory: pytest.TempPathFactory, raw: Any) -> None:
    _load(tmp_path_factory.mktemp("cfg"), raw)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[web]\nport = 99999\n", "web.port"),
        ("[web]\nport = '8080'\n", "web.port"),
        ("[web]\nmax_streams = nan\n", "web.max_streams"),
        ("[web]\nstream_fps = inf\n", "web.stream_fps"),
        ("[camera]\nfps = 1e400\n", "camera.fps"),
        ("[camera]\nwidth = 123456789012345678901234567890\n", "camera.width"),
        ("[trial]\nduration_s = -inf\n", "trial.duration_s"),
        ("[web]\n[web]\n", "not valid TOML"),
        ("web = 3\n", "web"),
        ("\x00\x01\x02", "not valid TOML"),
    ],
)
def test_config_edge_values_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        path = tmp_path / "c.toml"
        path.write_text(text, encoding="utf-8")
        load_config(path)


def test_config_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[web]\nhost = '\xff\xfe'\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


# --------------------------------------------------------------------------- feature extraction

finite = st.floats(-1e4, 1e4, allow_nan=False)
weird = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 0.0, 5e-324])
coords = st.one_of(finite, weird)


def _as(dtype: Any) -> Any:
    def cast(a: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return a.astype(dtype)  # 1e300 → inf in float32, as a tracker bug might deliver

    return cast


lm_arrays = hnp.arrays(
    dtype=np.float64,
    shape=st.tuples(st.integers(0, 6), st.sampled_from([21, 21, 21, 20, 0]), st.sampled_from([3, 3, 2, 4])),
    elements=coords,
).flatmap(lambda a: st.sampled_from([a, _as(np.float32)(a)]))


def _only_flexscore_errors(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        out = fn(*args, **kwargs)
    except FlexscoreError as exc:
        assert str(exc)
        return None
    return out


@BUDGET
@given(lm=lm_arrays, left=st.booleans())
def test_frame_features_on_any_array(lm: np.ndarray, left: bool) -> None:
    with np.errstate(all="ignore"):
        out = _only_flexscore_errors(frame_features, lm, left=left, variant="3d")
    if out is not None:
        assert out.shape[0] == lm.shape[0]
        assert np.isfinite(out).all(), "features of accepted landmarks must be finite"


@BUDGET
@given(lm=lm_arrays)
def test_normalize_landmarks_on_any_array(lm: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        _only_flexscore_errors(normalize_landmarks, lm)


@BUDGET
@given(
    lm=lm_arrays,
    t=hnp.arrays(np.float64, st.integers(0, 7), elements=coords),
    steps=st.integers(-2, 300),
)
def test_resample_landmarks_on_any_arrays(lm: np.ndarray, t: np.ndarray, steps: int) -> None:
    with np.errstate(all="ignore"):
        out = _only_flexscore_errors(resample_landmarks, lm, t, steps)
    if out is not None:
        assert out[0].shape == (steps, 21, 3)


@pytest.mark.parametrize(
    "value",
    [None, "landmarks", [[1, 2, 3]] * 21, {"x": 1}, np.array(["a"] * 63).reshape(1, 21, 3), object()],
)
def test_features_reject_wrong_types(value: Any) -> None:
    for fn in (frame_features, normalize_landmarks):
        with pytest.raises(FlexscoreError):
            fn(value)
    with pytest.raises(FlexscoreError):
        resample_landmarks(value, np.arange(3.0))


def _trial_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 8))
    lm = draw(hnp.arrays(np.float64, (n, 21, 3), elements=coords))
    if draw(st.booleans()):  # mostly plausible times, sometimes anything
        t = np.sort(draw(hnp.arrays(np.float64, n, elements=st.floats(0, 20))))
    else:
        t = draw(hnp.arrays(np.float64, draw(st.sampled_from([n, n + 1])), elements=coords))
    return {
        "landmarks": lm,
        "t": t,
        "presence": draw(hnp.arrays(np.float32, n, elements=st.floats(-1, 2, width=32))),
        "handedness": tuple(draw(st.sampled_from(["Left", "Right", None, "Both"])) for _ in range(n)),
        "image_size": draw(st.tuples(st.integers(-5, 5000), st.integers(-5, 5000))),
        "side": draw(st.sampled_from([None, "left", "right", "up"])),
        "has_z": draw(st.booleans()),
    }


@BUDGET
@given(data=st.data(), variant=st.sampled_from(["2d", "3d", "4d"]))
def test_trial_features_on_any_trial(data: st.DataObject, variant: Any) -> None:
    kwargs = _trial_kwargs(data.draw)
    with np.errstate(all="ignore"):
        trial = _only_flexscore_errors(Trial, **kwargs)
        if trial is None:
            return
        out = _only_flexscore_errors(trial_features, trial, variant, 32)
    if out is not None:
        assert out.shape[0] == 32
        assert np.isfinite(out).all()


# --------------------------------------------------------------------------- API payloads


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[Flask, FakeServices, int]]:
    fake, _old, last = seeded_fake()
    app = make_app(fake)
    try:
        yield app, fake, last
    finally:
        _CLIENTS.pop(id(app), None)
        shutdown(app)
        fake.close()


_CLIENTS: dict[int, tuple[FlaskClient, str]] = {}


def _clinician(app: Flask) -> tuple[FlaskClient, str]:
    """One logged-in clinician client per app (scrypt makes each login slow on purpose)."""
    if id(app) not in _CLIENTS:
        client = app.test_client()
        login(client, "clinician")
        _CLIENTS[id(app)] = client, csrf(client)
    return _CLIENTS[id(app)]


def _labels(fake: FakeServices, trial_id: int) -> int:
    return len(fake.store.labels_for(trial_id))


codes = st.one_of(
    st.none(),
    st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=1, max_size=40),
    st.text(max_size=40),
    json_values,
)
sides = st.one_of(st.sampled_from([None, "", "left", "right", "LEFT", "both"]), json_values)


@BUDGET
@given(body=st.one_of(json_values, st.fixed_dictionaries({"patient_code": codes, "side": sides})))
def test_api_start_with_any_json(api: tuple[Flask, FakeServices, int], body: Any) -> None:
    app, fake, _ = api
    client, token = _clinician(app)
    trials_before = len(fake.store.list_trials(limit=100_000))
    resp = client.post("/api/trials/start", json=body, headers={"X-CSRF-Token": token})
    try:
        assert resp.status_code in (202, 400, 409), resp.text
        assert resp.is_json and resp.get_json()
        if resp.status_code == 400:
            assert resp.get_json()["error"]
    finally:
        fake.cancel_trial()
    assert len(fake.store.list_trials(limit=100_000)) >= trials_before  # nothing lost


@BUDGET
@given(body=st.one_of(json_values, st.fixed_dictionaries({"score": json_values, "comment": json_values})))
def test_api_label_with_any_json(api: tuple[Flask, FakeServices, int], body: Any) -> None:
    app, fake, last = api
    client, token = _clinician(app)
    before = _labels(fake, last)
    resp = client.post(f"/api/trials/{last}/label", json=body, headers={"X-CSRF-Token": token})
    assert resp.status_code in (201, 400), resp.text
    after = _labels(fake, last)
    if resp.status_code == 201:
        stored = resp.get_json()
        assert stored["score"] in (0, 1, 2, None)
        assert after == before + 1
    else:
        assert after == before  # a refused label stores nothing and removes nothing


@BUDGET
@given(
    score=st.text(max_size=12) | st.sampled_from(["0", "1", "2", "ns", " 2 ", "NS"]),
    comment=st.text(max_size=1200),
)
def test_label_form_with_any_text(api: tuple[Flask, FakeServices, int], score: str, comment: str) -> None:
    app, fake, last = api
    client, token = _clinician(app)
    before = _labels(fake, last)
    resp = client.post(
        f"/results/{last}/label", data={"score": score, "comment": comment, "csrf_token": token}
    )
    assert resp.status_code in (302, 400), resp.text[:200]
    assert _labels(fake, last) in (before, before + 1)


@BUDGET
@given(
    raw=st.binary(max_size=200),
    ctype=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
    ),
    path=st.sampled_from(["/api/trials/start", "/api/trials/cancel", "/api/trials/{last}/label"]),
)
def test_api_with_raw_bodies(api: tuple[Flask, FakeServices, int], raw: bytes, ctype: str, path: str) -> None:
    app, fake, last = api
    client, token = _clinician(app)
    resp = client.post(path.format(last=last), data=raw, content_type=ctype, headers={"X-CSRF-Token": token})
    try:
        assert resp.status_code < 500, resp.text
    finally:
        fake.cancel_trial()


query_text = st.text(max_size=30) | st.sampled_from(
    ["", "P001", "scored", "2024-02-30", "-1", "1e9", "9" * 30]
)


@BUDGET
@given(
    path=st.sampled_from(["/api/trials", "/history", "/export", "/export/trials.csv", "/export/trials.json"]),
    args=st.dictionaries(
        st.sampled_from(["patient", "status", "from", "to", "limit", "offset", "x"]), query_text, max_size=5
    ),
)
def test_queries_with_any_arguments(
    api: tuple[Flask, FakeServices, int], path: str, args: dict[str, str]
) -> None:
    app, _, _ = api
    client, _ = _clinician(app)
    resp = client.get(path, query_string=args)
    assert resp.status_code in (200, 400, 404), resp.text[:300]


@SMALL_BUDGET
@given(code=st.text(max_size=40), day=st.text(max_size=20))
def test_fhir_export_with_any_path(api: tuple[Flask, FakeServices, int], code: str, day: str) -> None:
    from urllib.parse import quote

    assume(code and day)
    app, _, _ = api
    client, _ = _clinician(app)
    resp = client.get(f"/export/fhir/{quote(code, safe='')}/{quote(day, safe='')}.json")
    assert resp.status_code in (200, 404), resp.text[:300]


# --------------------------------------------------------------------------- video files


@pytest.fixture(scope="module")
def sample_bytes(sample_video: Path) -> bytes:
    return sample_video.read_bytes()


@SMALL_BUDGET
@given(cut=st.floats(0.0, 0.98), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=40))
def test_truncated_or_corrupted_video_gives_video_error(
    tmp_path_factory: pytest.TempPathFactory, sample_bytes: bytes, cut: float, flips: list[tuple[float, int]]
) -> None:
    from device.video import read_frames

    data = bytearray(sample_bytes[: int(len(sample_bytes) * (1.0 - cut))])
    for where, value in flips:
        if data:
            data[int(where * (len(data) - 1))] = value
    path = tmp_path_factory.mktemp("video") / "damaged.mp4"
    path.write_bytes(bytes(data))
    try:
        frames = sum(1 for _ in read_frames(path, max_frames=400))
    except VideoError as exc:
        assert str(path) in str(exc) or "video" in str(exc)
        return
    assert frames > 0


@pytest.mark.parametrize("damage", ["truncated", "header", "garbage"])
def test_damaged_video_as_camera_gives_camera_error_or_frames(
    tmp_path: Path, sample_bytes: bytes, damage: str
) -> None:
    from device.camera.file_source import FileSource
    from device.errors import CameraError

    data = {
        "truncated": sample_bytes[: len(sample_bytes) // 3],
        "header": b"\x00" * 64 + sample_bytes[64:],
        "garbage": bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8)),
    }[damage]
    path = tmp_path / f"{damage}.mp4"
    path.write_bytes(data)
    src = FileSource(path, loop=False, paced=False)
    got = 0
    try:
        src.open()
        while got < 500:
            frame = src.read(timeout=1.0)
            if frame is None:
                break
            assert frame.rgb.ndim == 3
            got += 1
    except CameraError as exc:  # EndOfStream is one; a damaged file ends early or fails to open
        assert str(exc)
    finally:
        src.close()
    assert not src.is_open


def test_input_error_is_a_flexscore_error() -> None:
    assert issubclass(InputError, FlexscoreError) and issubclass(VideoError, FlexscoreError)
