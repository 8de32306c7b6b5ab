"""Adds translations to the catalogs from a JSON file, after re-extracting the template.

    python tools/translate.py FILE.json

FILE.json maps each English msgid to its translations, a string per language, or a list of
strings for a plural message (msgid = the singular; the forms in the language's order):

    {"Received.": {"uk": "Отримано.", "crh": "Alındı.", "ru": "Получено."}}

A message with a context is keyed "context\\u0004msgid". The catalogs are updated under a lock
(several people may translate at once), and `check` still decides whether they are complete.
"""

from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import i18n_check  # type: ignore[import-not-found]  # noqa: E402

from bot.i18n import LANGUAGES, catalog_path, load_catalog  # noqa: E402

LOCK = ROOT / "locales" / ".translate.lock"


def apply(translations: dict[str, dict[str, str | list[str]]]) -> list[str]:
    """Set the given translations; returns the msgids that are not in the code (yet)."""
    locales = ROOT / "locales"
    i18n_check.update(ROOT)
    unknown: set[str] = set()
    for lang in LANGUAGES:
        if lang == i18n_check.SOURCE_LANGUAGE:
            continue
        path = catalog_path(locales, lang)
        catalog = load_catalog(path)
        for key, by_language in translations.items():
            if lang not in by_language:
                continue
            context, _, msgid = key.rpartition("\u0004")
            message = catalog.get(msgid, context or None)
            if message is None:
                unknown.add(key)
                continue
            value = by_language[lang]
            message.string = tuple(value) if isinstance(value, list) else value
            message.flags.discard("fuzzy")
        path.write_bytes(i18n_check._render(catalog, drop_obsolete=False))
    i18n_check.update(ROOT)
    return sorted(unknown)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    translations = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    LOCK.touch(exist_ok=True)
    with LOCK.open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        unknown = apply(translations)
    for key in unknown:
        print(f"not in the code: {key!r}", file=sys.stderr)
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
