"""Extract the web page's texts and update the translation catalogues.

Usage: ``python scripts/i18n.py [--check]``

* extracts every msgid from ``device/web`` (templates: ``_()``, ``ngettext()``; Python:
  ``gettext``, ``ngettext``, ``N_``, ``translate``) with Babel's extractors;
* updates ``device/web/translations/<lang>/LC_MESSAGES/messages.po`` for each language in
  :data:`device.web.i18n.LANGUAGES` but English (new msgids arrive untranslated, removed ones
  are dropped), keeping every existing translation;
* ``--check``: change nothing; exit 1 and list the msgids without a translation.

The catalogues are compiled in memory by the app (device/web/i18n.py): no .mo files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "device" / "web"
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    "translate": None,
}
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}


def extract() -> Catalog:
    """Every msgid of the web page, with where it is used."""
    cat = Catalog(project="flexscore", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        WEB, METHODS, options_map=OPTIONS, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
    ):
        cat.add(message, None, [(f"device/web/{filename}", lineno)], auto_comments=comments, context=context)
    return cat


def untranslated(cat: Catalog) -> list[str]:
    out = []
    for msg in cat:
        if not msg.id:
            continue
        strings = msg.string if isinstance(msg.string, tuple | list) else (msg.string,)
        if msg.fuzzy or not all(strings):
            out.append(msg.id if isinstance(msg.id, str) else msg.id[0])
    return out


def main(argv: list[str] | None = None) -> int:
    from device.web.i18n import LANGUAGES, SOURCE_LANGUAGE, po_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report untranslated msgids")
    args = ap.parse_args(argv)
    template = extract()
    status = 0
    for lang in LANGUAGES:
        if lang == SOURCE_LANGUAGE:
            continue
        path = po_path(lang)
        if path.is_file():
            with path.open("rb") as fh:
                cat = read_po(fh, locale=lang)
        else:
            cat = Catalog(locale=lang, project="flexscore", charset="utf-8")
        cat.update(template, no_fuzzy_matching=True)
        cat.fuzzy = False  # the header: translations are checked by tests/test_i18n.py
        cat.project, cat.version = "flexscore", "web"
        cat.last_translator = cat.language_team = "Flexscore developers"
        missing = untranslated(cat)
        if args.check:
            if missing:
                status = 1
                print(f"{lang}: {len(missing)} msgid(s) without a translation:", file=sys.stderr)
                for m in missing:
                    print(f"  {m!r}", file=sys.stderr)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, cat, width=100, omit_header=False, ignore_obsolete=True)
        print(f"{path.relative_to(ROOT)}: {len(cat)} msgids, {len(missing)} untranslated")
    return status


if __name__ == "__main__":
    sys.exit(main())
