"""tools/i18n_check.py: it catches what would show users a wrong or broken text, and the real
catalogs pass it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from bot.i18n import LANGUAGES, PLURAL_FORMS, catalog_path, load_catalog

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "i18n_check.py"


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("i18n_check", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["i18n_check"] = module
    spec.loader.exec_module(module)
    return module


tool = _load_tool()

SOURCE = """
from bot.i18n import N_

LABEL = N_("Region")


def reply(tr, name, n):
    tr.gettext("Hello, {name}!").format(name=name)
    tr.ngettext("{count} case", "{count} cases", n).format(count=n)
    tr.pgettext("button", "Open")
    return _("Done: %(what)s") % {"what": name}
"""

GOOD = {
    "Region": "Регіон",
    "Hello, {name}!": "Вітаємо, {name}!",
    ("{count} case", "{count} cases"): ("{count} справа", "{count} справи", "{count} справ"),
    ("button", "Open"): "Відкрити",
    "Done: %(what)s": "Готово: %(what)s",
}


def _project(tmp_path: Path, source: str = SOURCE) -> Path:
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "texts.py").write_text(source, encoding="utf-8")
    (tmp_path / "babel.cfg").write_text((REPO / "babel.cfg").read_text(encoding="utf-8"))
    return tmp_path


def _translations(lang: str) -> dict[object, object]:
    """The same translations in every language, adapted to its number of plural forms."""
    table: dict[object, object] = dict(GOOD)
    if lang in ("en", "crh"):
        table[("{count} case", "{count} cases")] = ("{count} case", "{count} cases")
    return table


def _write(
    root: Path,
    lang: str,
    table: dict[object, object],
    *,
    fuzzy: set[object] = frozenset(),  # type: ignore[assignment]
    plural_forms: str | None = None,
) -> None:
    catalog = Catalog(domain="hotline", charset="utf-8", fuzzy=False)
    catalog.mime_headers = [
        ("Language", lang),
        ("Plural-Forms", plural_forms or PLURAL_FORMS[lang]),
    ]
    for key, string in table.items():
        context = None
        msgid = key
        if isinstance(key, tuple) and key[0] == "button":
            context, msgid = key
        catalog.add(msgid, string, context=context, flags=["fuzzy"] if key in fuzzy else [])
    path = catalog_path(root / "locales", lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog)


def _complete(root: Path) -> None:
    for lang in LANGUAGES:
        _write(root, lang, _translations(lang))


def _errors(root: Path) -> list[str]:
    return list(tool.check(root).errors)


def test_complete_catalogs_pass(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    assert _errors(root) == []


def test_extraction_finds_method_calls_and_keywords(tmp_path: Path) -> None:
    template = tool.extract(_project(tmp_path))
    ids = {(m.context, m.id if isinstance(m.id, str) else tuple(m.id)) for m in template if m.id}
    assert ids == {
        (None, "Region"),
        (None, "Hello, {name}!"),
        (None, ("{count} case", "{count} cases")),
        ("button", "Open"),
        (None, "Done: %(what)s"),
    }


def test_missing_message_is_caught(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    table = _translations("ru")
    del table["Region"]
    _write(root, "ru", table)
    errors = _errors(root)
    assert len(errors) == 1
    assert "locales/ru/LC_MESSAGES/hotline.po: missing" in errors[0]
    assert '"Region"' in errors[0] and "bot/texts.py:4" in errors[0]


def test_empty_translation_is_caught(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    _write(root, "crh", {**_translations("crh"), "Hello, {name}!": ""})
    assert _errors(root) == [
        'locales/crh/LC_MESSAGES/hotline.po: empty translation: "Hello, {name}!"'
    ]


def test_empty_plural_form_is_caught(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    table = _translations("uk")
    table[("{count} case", "{count} cases")] = ("{count} справа", "{count} справи", "")
    _write(root, "uk", table)
    [error] = _errors(root)
    assert "empty translation (plural form 2)" in error


def test_fuzzy_translation_is_caught(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    _write(root, "en", _translations("en"), fuzzy={"Region"})
    assert _errors(root) == ['locales/en/LC_MESSAGES/hotline.po: fuzzy translation: "Region"']


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("Hello, {name}!", "Вітаємо, {imya}!"),
        ("Hello, {name}!", "Вітаємо!"),
        ("Done: %(what)s", "Готово: %(shcho)s"),
        ("Done: %(what)s", "Готово: {what}"),
        ("Region", "Регіон {region}"),
        ("Hello, {name}!", "Вітаємо, {name!"),
        ("Hello, {name}!", "Вітаємо, <b>{name}!"),
    ],
)
def test_placeholder_mismatch_is_caught(tmp_path: Path, key: str, bad: str) -> None:
    root = _project(tmp_path)
    _complete(root)
    _write(root, "uk", {**_translations("uk"), key: bad})
    [error] = _errors(root)
    assert error.startswith("locales/uk/LC_MESSAGES/hotline.po: ")
    assert "differ" in error


def test_placeholder_mismatch_in_a_plural_form_is_caught(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    table = _translations("ru")
    # Form 0 serves 1, 21, 31...: it must keep {count}.
    table[("{count} case", "{count} cases")] = ("одно дело", "{count} дела", "{count} дел")
    _write(root, "ru", table)
    [error] = _errors(root)
    assert "placeholders differ" in error and "plural form 0" in error


def test_singular_only_form_may_drop_the_number(tmp_path: Path) -> None:
    """In en and crh form 0 is only for n == 1, so it may say "one case" like the msgid."""
    root = _project(
        tmp_path, SOURCE.replace('"{count} case", "{count} cases"', '"One case", "{count} cases"')
    )
    for lang in LANGUAGES:
        table = _translations(lang)
        del table[("{count} case", "{count} cases")]
        forms = {"en": ("One case", "{count} cases"), "crh": ("Bir iş", "{count} iş")}
        table[("One case", "{count} cases")] = forms.get(
            lang, ("{count} справа", "{count} справи", "{count} справ")
        )
        _write(root, lang, table)
    assert _errors(root) == []


def test_repeating_a_named_placeholder_is_fine(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    _write(root, "uk", {**_translations("uk"), "Hello, {name}!": "{name}, вітаємо, {name}!"})
    assert _errors(root) == []


def test_wrong_plural_header_is_caught(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    table = _translations("uk")
    table[("{count} case", "{count} cases")] = ("{count} справа", "{count} справ")
    _write(root, "uk", table, plural_forms="nplurals=2; plural=(n != 1);")
    [error] = _errors(root)
    assert "Plural-Forms" in error


def test_missing_catalog_is_caught(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    catalog_path(root / "locales", "crh").unlink()
    [error] = _errors(root)
    assert "locales/crh/LC_MESSAGES/hotline.po: catalog missing" in error


def test_obsolete_and_stale_entries_are_only_warnings(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _complete(root)
    _write(root, "uk", {**_translations("uk"), "Gone from the code": "Вже нема"})
    report = tool.check(root)
    assert report.errors == []
    assert any("not in the code any more" in line for line in report.warnings)


def test_update_creates_catalogs_merges_and_check_then_fails_until_translated(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path)
    written = tool.update(root)
    assert root / "locales" / "hotline.pot" in written
    for lang in LANGUAGES:
        catalog = load_catalog(catalog_path(root / "locales", lang))
        assert catalog.plural_forms.replace(" ", "") == PLURAL_FORMS[lang].replace(" ", "")
    en = load_catalog(catalog_path(root / "locales", "en"))
    assert en.get("Region") is not None and en.get("Region").string == "Region"
    errors = _errors(root)
    assert any(e.startswith("locales/crh/") and "empty translation" in e for e in errors)
    assert not any(e.startswith("locales/en/") for e in errors)

    # Translate everything, then add a message to the code: update keeps the work, check fails.
    for lang in ("uk", "crh", "ru"):
        _write(root, lang, _translations(lang))
    tool.update(root)  # rewrites them in its own layout
    assert tool.update(root) == []  # nothing changed but dates: no rewrite
    assert _errors(root) == []
    (root / "bot" / "more.py").write_text('_("Goodbye")\n', encoding="utf-8")
    tool.update(root)
    errors = _errors(root)
    assert sorted(e.split(":")[0] for e in errors) == sorted(
        f"locales/{lang}/LC_MESSAGES/hotline.po" for lang in ("uk", "crh", "ru")
    )
    assert load_catalog(catalog_path(root / "locales", "uk")).get("Region").string == "Регіон"


def test_stats_counts_untranslated(tmp_path: Path) -> None:
    root = _project(tmp_path)
    tool.update(root)
    counts = tool.stats(root)
    assert counts["crh"]["untranslated"] == 5
    assert counts["en"]["untranslated"] == 0


def test_repo_catalogs_are_complete() -> None:
    """The catalogs in the repository have every message of the code, translated."""
    report = tool.check(REPO)
    assert report.errors == [], "\n".join(report.errors)


def test_command_line_check_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(TOOL), "check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
