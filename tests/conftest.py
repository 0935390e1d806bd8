"""Shared fixtures. Tests never need ../shared or the network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MODELS = ROOT / "models"

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Hardware tests run only on a Raspberry Pi (or with FLEXSCORE_HARDWARE=1)."""
    on_pi = Path("/proc/device-tree/model").exists() and "Raspberry Pi" in Path(
        "/proc/device-tree/model"
    ).read_text(errors="ignore")
    if on_pi or os.environ.get("FLEXSCORE_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(reason="needs a Raspberry Pi with camera/GPIO (hardware marker)")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture()
def fake() -> Iterator[Any]:
    """The appliance core with fake parts (device/web/fake.py); modules may override it."""
    from device.web.fake import FakeServices

    with FakeServices() as f:
        yield f


@pytest.fixture()
def app(fake: Any) -> Iterator[Any]:
    """The web page over ``fake``; modules that need other web settings override it."""
    from test_web_support import make_app

    from device.web import shutdown

    flask_app = make_app(fake)
    yield flask_app
    shutdown(flask_app)


@pytest.fixture()
def clinician(app: Any) -> Any:
    """A test client logged in as the clinician."""
    from test_web_support import login

    client = app.test_client()
    login(client, "clinician")
    return client


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS


@pytest.fixture(scope="session")
def sample_video() -> Path:
    from device.data import SAMPLE_VIDEO

    return SAMPLE_VIDEO


@pytest.fixture(scope="session")
def sample_frames(sample_video: Path) -> list:
    from device.video import read_frames

    return [rgb for _, _, rgb in read_frames(sample_video)]


@pytest.fixture()
def tracker_full() -> Iterator:
    from device.config import Config, FilterConfig, ModelsConfig, TrackerConfig
    from device.vision.tracker import build_tracker

    cfg = Config(
        models=ModelsConfig(complexity="full", precision="fp32"),
        tracker=TrackerConfig(filter=FilterConfig(enabled=False)),
    )
    with build_tracker(cfg) as tr:
        yield tr
