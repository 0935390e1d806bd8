"""The page's translations: every msgid has a German translation with the same placeholders;
the language follows the browser or ``[web] language``; the API stays English; the catalogues
are compiled at run time (no generated .mo file in the repository)."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from test_web_support import csrf, login, make_app

from device.config import config_from_dict
from device.errors import ConfigError
from device.web import shutdown
from device.web.fake import FakeServices
from device.web.i18n import LANGUAGES, TRANSLATIONS, po_path

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def _script() -> object:
    spec = importlib.util.spec_from_file_location("flexscore_i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_every_msgid_has_a_german_translation() -> None:
    template = _script().extract()  # type: ignore[attr-defined]
    with po_path("de").open("rb") as fh:
        german = read_po(fh, locale="de")
    ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in template if m.id}
    assert len(ids) > 300  # the whole page: templates and Python
    missing, bad = [], []
    for msg in template:
        if not msg.id:
            continue
        tr = german.get(msg.id)
        strings = () if tr is None else (tr.string if isinstance(tr.string, tuple | list) else (tr.string,))
        if tr is None or tr.fuzzy or not strings or not all(strings):
            missing.append(msg.id)
            continue
        sources = (msg.id,) if isinstance(msg.id, str) else tuple(msg.id)  # singular, plural
        for k, text in enumerate(strings):
            source = sources[min(k, len(sources) - 1)]
            if sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(source)):
                bad.append((msg.id, text))
    assert not missing, f"untranslated (run scripts/i18n.py, then translate): {missing}"
    assert not bad, f"placeholders differ: {bad}"


def test_no_generated_catalogue_is_committed() -> None:
    assert LANGUAGES == ("en", "de")
    assert list(TRANSLATIONS.rglob("*.mo")) == []
    assert po_path("de").is_file()


@pytest.fixture()
def fake() -> Iterator[FakeServices]:
    with FakeServices() as f:
        yield f


def _client(fake: FakeServices, **web: object) -> FlaskClient:
    app = make_app(fake, **web)
    client = app.test_client()
    return client


def test_a_german_browser_gets_german_pages(fake: FakeServices) -> None:
    trial = fake.run_trial("P001", "right", 2)
    assert trial is not None
    client = _client(fake)
    de = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
    login(client, "clinician")
    page = client.get("/", headers=de).text
    assert '<html lang="de">' in page and ">Abbrechen<" in page and "Patientencode" in page
    result = client.get(f"/results/{trial.id}", headers=de).text
    assert "Volle Beugung" in result and "Neuer Durchgang" in result and "Sicherheit" in result
    assert "Nicht gefunden" in client.get("/nope", headers=de).text
    english = client.get("/", headers={"Accept-Language": "fr, en;q=0.5"}).text
    assert '<html lang="en">' in english and ">Cancel<" in english
    api = client.get("/api/trials/999", headers=de).get_json()  # the API is read by programs
    assert api["error"] == "There is nothing here."
    shutdown(client.application)


def test_the_language_setting_overrides_the_browser(fake: FakeServices) -> None:
    client = _client(fake, language="de")
    page = client.get("/login", headers={"Accept-Language": "en-GB"}).text
    assert '<html lang="de">' in page and "Im Patientenmodus starten" in page
    token = csrf(client)
    resp = client.post("/login", data={"csrf_token": token, "password": "wrong"})
    assert "Falsches Passwort." in resp.text
    shutdown(client.application)
    assert config_from_dict({"web": {"language": "en"}}).web.language == "en"
    with pytest.raises(ConfigError, match=r"web\.language"):
        config_from_dict({"web": {"language": "fr"}})
