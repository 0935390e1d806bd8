"""Translations of the web page (Flask-Babel over gettext catalogues).

The page is written in English (the msgids); ``translations/<lang>/LC_MESSAGES/messages.po``
holds each other language (German today). The ``.po`` files are the only committed form:
each is compiled in memory the first time a page needs it (Babel's own reader and
``.mo`` writer, a few milliseconds), so no generated ``.mo`` file is committed or has to be
rebuilt by hand. ``scripts/i18n.py`` extracts the msgids from the templates and the code
and updates the catalogues; ``tests/test_i18n.py`` checks that every msgid has a German
translation with the same placeholders.

The language of a request: ``[web] language`` when it names one ("en", "de"), else
("auto", the default) the best match of the browser's ``Accept-Language``, else English.

Strings in Python that are shown on a page are marked with :func:`N_` where they are
defined (so the extractor finds them) and translated with :func:`gettext` when a page is
rendered; the JSON API stays English (it is read by programs).
"""

from __future__ import annotations

import io
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from babel import Locale, support
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, has_app_context, request
from flask_babel import Babel, Domain, get_locale
from flask_babel import gettext as gettext
from flask_babel import ngettext as ngettext

from device.config import WEB_LANGUAGES

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"
LANGUAGES: tuple[str, ...] = tuple(lang for lang in WEB_LANGUAGES if lang != "auto")

__all__ = ["LANGUAGES", "N_", "gettext", "init_app", "ngettext", "page_language"]


def N_(text: str) -> str:
    """Mark ``text`` for translation where it is defined; :func:`gettext` translates it later."""
    return text


def po_path(lang: str) -> Path:
    return TRANSLATIONS / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalogue(lang: str) -> support.Translations | support.NullTranslations:
    """The catalogue of ``lang`` compiled in memory (English, or a missing file: no-op)."""
    path = po_path(lang)
    if lang == SOURCE_LANGUAGE or not path.is_file():
        return support.NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return support.Translations(buf, domain=DOMAIN)


class CatalogueDomain(Domain):
    """Flask-Babel's domain, reading the ``.po`` files (compiled once per language)."""

    def __init__(self) -> None:
        super().__init__(domain=DOMAIN)
        self._lock = threading.Lock()
        self._compiled: dict[str, Any] = {}

    def get_translations(self) -> Any:
        locale = get_locale()
        lang = locale.language if locale is not None else SOURCE_LANGUAGE
        with self._lock:
            if lang not in self._compiled:
                self._compiled[lang] = compile_catalogue(lang)
            return self._compiled[lang]


class FlexscoreBabel(Babel):
    """One shared domain (Flask-Babel 4 makes a new one, and reloads, on every request)."""

    def __init__(self, app: Flask, language: str) -> None:
        self._domain = CatalogueDomain()
        self._language = language
        super().__init__(app, locale_selector=self.select, default_domain=DOMAIN)

    @property
    def domain_instance(self) -> Domain:
        return self._domain

    def select(self) -> str:
        if request.path.startswith("/api/"):
            return SOURCE_LANGUAGE  # the JSON API is read by programs: always English
        if self._language in LANGUAGES:
            return self._language
        return request.accept_languages.best_match(LANGUAGES, default=SOURCE_LANGUAGE) or SOURCE_LANGUAGE


def page_language() -> str:
    """The language of the page being rendered ("en", "de")."""
    locale = get_locale()
    return locale.language if locale is not None else SOURCE_LANGUAGE


def local_datetime(at: datetime, style: str = "medium") -> str:
    """A timestamp in the appliance's local time, written the page language's way."""
    return str(format_datetime(at.astimezone(), _DT_FORMATS[style], locale=_locale()))


def local_date(at: datetime) -> str:
    return str(format_date(at.astimezone().date(), "medium", locale=_locale()))


_DT_FORMATS = {"medium": "medium", "short": "short", "long": "d MMMM y, HH:mm"}


def _locale() -> Locale:
    return get_locale() or Locale.parse(SOURCE_LANGUAGE)


def number(value: float, digits: int = 0) -> str:
    """``value`` rounded to ``digits`` decimals, with the page language's decimal mark."""
    from babel.numbers import format_decimal

    fmt = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return str(format_decimal(round(float(value), digits), fmt, locale=_locale()))


def percent(share: float) -> str:
    """A share in [0, 1] as a whole percentage, the page language's way ("90%", "90 %")."""
    from babel.numbers import format_percent

    return str(format_percent(round(float(share), 2), "#,##0%", locale=_locale()))


def init_app(app: Flask, language: str) -> None:
    """Translations for ``app``'s pages; ``language``: "auto" or one of :data:`LANGUAGES`."""
    FlexscoreBabel(app, language)
    app.jinja_env.filters["localtime"] = local_datetime
    app.jinja_env.filters["localdate"] = local_date
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.globals["page_language"] = page_language
    app.jinja_env.globals["N_"] = N_
    app.jinja_env.policies["ext.i18n.trimmed"] = True


def translate(text: str) -> str:
    """:func:`gettext` when a request is being served, else ``text`` unchanged."""
    if not has_app_context():
        return text
    return str(gettext(text))
