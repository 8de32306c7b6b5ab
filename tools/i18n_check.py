"""Keeps the gettext catalogs in step with the code; run by CI (`check`) and by translators.

    python tools/i18n_check.py check            # exit 1, one line per problem
    python tools/i18n_check.py update           # re-extract hotline.pot, merge into the 4 .po
    python tools/i18n_check.py update --drop-obsolete
    python tools/i18n_check.py stats            # untranslated counts per language

It uses Babel's Python API rather than `pybabel`, because `pybabel init` refuses `-l crh`
(CLDR does not know Crimean Tatar); nothing here needs CLDR data for crh. Plural-Forms headers
come from `bot.i18n.PLURAL_FORMS`.
"""

from __future__ import annotations

import argparse
import copy
import gettext
import re
import string
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: make `bot` importable
    sys.path.insert(0, str(ROOT))

from babel.messages.catalog import Catalog, Message  # noqa: E402
from babel.messages.extract import extract_from_dir  # noqa: E402
from babel.messages.frontend import parse_mapping_cfg  # noqa: E402
from babel.messages.pofile import write_po  # noqa: E402

from bot.i18n import DOMAIN, LANGUAGES, PLURAL_FORMS, catalog_path, load_catalog  # noqa: E402

#: The same keywords as documented for pybabel in locales/README.md.
KEYWORDS: dict[str, tuple[int | tuple[int, str], ...] | None] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "N_": None,
}
COMMENT_TAGS = ("TRANSLATORS:",)
PROJECT = "hotline-bot"
TEMPLATE_NAME = f"{DOMAIN}.pot"
SOURCE_LANGUAGE = "en"  # msgids are English: the en catalog is pre-filled with them

_PERCENT = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[#0+\-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?"
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)
_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)\b[^<>]*>")
_DATE_HEADER = re.compile(rb'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"$', re.MULTILINE)


@dataclass
class Report:
    """What `check` found: errors fail the run, warnings are only printed."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- extraction -----------------------------------------------------------------------------


def extract(root: Path = ROOT, mapping_file: Path | None = None) -> Catalog:
    """The messages of the code, extracted as pybabel would with babel.cfg and KEYWORDS."""
    cfg = mapping_file or root / "babel.cfg"
    with cfg.open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, str(cfg))  # type: ignore[no-untyped-call]
    template = Catalog(project=PROJECT, domain=DOMAIN, charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        root, method_map, options_map, keywords=KEYWORDS, comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
    ):  # fmt: skip
        template.add(
            message, None, [(Path(filename).as_posix(), lineno)],
            auto_comments=comments, context=context,
        )  # fmt: skip
    return template


# --- placeholders ---------------------------------------------------------------------------


def placeholders(text: str) -> Counter[str]:
    """The format fields of a text: `{name}`, `{}`, `%(name)s`, `%s`.

    Named fields count once however often they are used (repeating one is harmless);
    positional ones (`{}`, `%s`) are counted, since each takes the next argument.
    """
    found: Counter[str] = Counter()
    for match in _PERCENT.finditer(text):
        if match["conv"] == "%":
            continue
        if match["name"] is not None:
            found[f"%({match['name']}){match['conv']}"] = 1
        else:
            found[f"%{match['conv']}"] += 1
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        found["{unbalanced braces}"] = 1
        return found
    for name in fields:
        if name == "":
            found["{}"] += 1
        else:
            found["{" + name + "}"] = 1
    return found


def tags(text: str) -> Counter[str]:
    """HTML tags (Telegram parse mode): a translation that breaks them makes sending fail."""
    return Counter(match.group(0).split()[0].rstrip(">") + ">" for match in _TAG.finditer(text))


def _show(text: str) -> str:
    one_line = text.replace("\n", "\\n")
    return '"' + (one_line if len(one_line) <= 70 else one_line[:67] + "...") + '"'


def _describe(counter: Counter[str]) -> str:
    return " ".join(sorted(counter.elements())) or "none"


def _normalized_plural_forms(value: str) -> str:
    return re.sub(r"\s+", "", value).rstrip(";")


def _singular_only_form0(catalog: Catalog) -> bool:
    """Whether form 0 is used for n == 1 alone (en, crh), so it may leave the number out."""
    try:
        rule = gettext.c2py(catalog.plural_expr)
    except (ValueError, SyntaxError):
        return False
    return all((rule(n) == 0) == (n == 1) for n in range(0, 1001))


def _key(message: Message) -> tuple[str, str | None]:
    ident = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
    return str(ident), message.context


# --- check ----------------------------------------------------------------------------------


def check_catalog(lang: str, catalog: Catalog, template: Catalog, where: str) -> Report:
    """Compare one language's catalog with the messages of the code."""
    report = Report()
    expected_plurals = PLURAL_FORMS.get(lang)
    if expected_plurals is not None and _normalized_plural_forms(
        catalog.plural_forms
    ) != _normalized_plural_forms(expected_plurals):
        report.errors.append(
            f"{where}: Plural-Forms is {catalog.plural_forms!r}, expected {expected_plurals!r}"
        )
    form0_singular = _singular_only_form0(catalog)
    in_code = {_key(message) for message in template if message.id}
    for wanted in template:
        if not wanted.id:
            continue
        msgid, context = _key(wanted)
        label = _show(msgid) + (f" (context {context!r})" if context else "")
        source = ", ".join(f"{path}:{line}" for path, line in wanted.locations[:2])
        have = catalog.get(msgid, context=context)
        if have is None:
            report.errors.append(f"{where}: missing {label} from {source}")
            continue
        if wanted.pluralizable != have.pluralizable or (
            wanted.pluralizable and tuple(wanted.id) != tuple(have.id)
        ):
            report.errors.append(f"{where}: singular/plural text differs from the code: {label}")
            continue
        if have.fuzzy:
            report.errors.append(f"{where}: fuzzy translation: {label}")
            continue
        report.errors.extend(_translation_problems(have, catalog, where, label, form0_singular))
    for message in catalog:
        if message.id and _key(message) not in in_code:
            report.warnings.append(f"{where}: not in the code any more: {_show(_key(message)[0])}")
    for ident in catalog.obsolete:
        report.warnings.append(f"{where}: obsolete entry: {_show(str(_key_of(ident)))}")
    return report


def _key_of(ident: object) -> str:
    if isinstance(ident, tuple):
        return str(ident[0])
    return str(ident)


def _translation_problems(
    message: Message, catalog: Catalog, where: str, label: str, form0_singular: bool
) -> list[str]:
    if not message.pluralizable:
        text = message.string if isinstance(message.string, str) else ""
        if not text:
            return [f"{where}: empty translation: {label}"]
        return _compare(str(message.id), text, where, label)
    forms = list(message.string) if isinstance(message.string, (list, tuple)) else []
    singular, plural = (str(part) for part in message.id)
    problems: list[str] = []
    if len(forms) != catalog.num_plurals:
        problems.append(
            f"{where}: {len(forms)} plural forms, the header says {catalog.num_plurals}: {label}"
        )
    for index, form in enumerate(forms):
        if not form:
            problems.append(f"{where}: empty translation (plural form {index}): {label}")
            continue
        mine = _compare(plural, form, where, f"{label} (plural form {index})")
        if mine and index == 0 and form0_singular:
            mine = _compare(singular, form, where, f"{label} (plural form {index})") and mine
        problems.extend(mine)
    return problems


def _compare(original: str, translation: str, where: str, label: str) -> list[str]:
    problems = []
    want, got = placeholders(original), placeholders(translation)
    if want != got:
        problems.append(
            f"{where}: placeholders differ ({_describe(want)} vs {_describe(got)}): {label}"
        )
    want_tags, got_tags = tags(original), tags(translation)
    if want_tags != got_tags:
        problems.append(
            f"{where}: HTML tags differ ({_describe(want_tags)} vs {_describe(got_tags)}): {label}"
        )
    return problems


def check(root: Path = ROOT, locales_dir: Path | None = None) -> Report:
    """Every message of the code in every catalog, translated, not fuzzy, same placeholders."""
    locales = locales_dir or root / "locales"
    template = extract(root)
    report = Report()
    for lang in LANGUAGES:
        path = catalog_path(locales, lang)
        where = _relative(path, root)
        if not path.exists():
            report.errors.append(f"{where}: catalog missing (run the update command)")
            continue
        found = check_catalog(lang, load_catalog(path), template, where)
        report.errors.extend(found.errors)
        report.warnings.extend(found.warnings)
    pot = locales / TEMPLATE_NAME
    if not pot.exists() or _ids(load_catalog(pot)) != _ids(template):
        report.warnings.append(f"{_relative(pot, root)}: out of date (run the update command)")
    return report


def _ids(catalog: Iterable[Message]) -> set[tuple[str, str | None]]:
    return {_key(message) for message in catalog if message.id}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# --- update ---------------------------------------------------------------------------------


def _render(catalog: Catalog, *, drop_obsolete: bool) -> bytes:
    buffer = BytesIO()
    write_po(buffer, catalog, width=100, include_lineno=False, ignore_obsolete=drop_obsolete)
    return buffer.getvalue()


def _write_if_changed(path: Path, content: bytes) -> bool:
    """Skip rewrites that would change only the date headers (fewer merge conflicts)."""
    if path.exists() and _DATE_HEADER.sub(b"", path.read_bytes()) == _DATE_HEADER.sub(b"", content):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def _new_catalog(lang: str) -> Catalog:
    catalog = Catalog(project=PROJECT, domain=DOMAIN, charset="utf-8", fuzzy=False)
    catalog.mime_headers = [("Language", lang), ("Language-Team", lang)]
    return catalog


def _prefill_source(catalog: Catalog) -> None:
    """The English catalog starts equal to the msgids; reviewers may then reword it.

    A fuzzy en entry (a changed or near-matching msgid) is reset too: the new msgid is the
    new English text, and a near match's old text would be wrong.
    """
    for message in list(catalog)[1:]:
        if message.fuzzy:
            message.flags.discard("fuzzy")
            message.string = (
                (str(message.id[0]), str(message.id[1])) if message.pluralizable else ""
            )
        if message.pluralizable:
            forms = list(message.string) if isinstance(message.string, (list, tuple)) else []
            if not any(forms) and catalog.num_plurals == 2:
                message.string = (str(message.id[0]), str(message.id[1]))
        elif not message.string:
            message.string = str(message.id)


def update(
    root: Path = ROOT, locales_dir: Path | None = None, *, drop_obsolete: bool = False
) -> list[Path]:
    """Re-extract the template and merge it into each catalog; returns the files written."""
    locales = locales_dir or root / "locales"
    template = extract(root)
    written = []
    pot = locales / TEMPLATE_NAME
    if _write_if_changed(pot, _render(template, drop_obsolete=True)):
        written.append(pot)
    for lang in LANGUAGES:
        path = catalog_path(locales, lang)
        catalog = load_catalog(path) if path.exists() else _new_catalog(lang)
        catalog.mime_headers = [("Plural-Forms", PLURAL_FORMS[lang])]
        # A copy each time: update() adopts the template's Message objects, which must not be
        # shared between languages (en's pre-filling would leak into the next catalog).
        catalog.update(copy.deepcopy(template), update_creation_date=False)
        if lang == SOURCE_LANGUAGE:
            _prefill_source(catalog)
        if drop_obsolete:
            catalog.obsolete.clear()
        if _write_if_changed(path, _render(catalog, drop_obsolete=drop_obsolete)):
            written.append(path)
    return written


# --- stats ----------------------------------------------------------------------------------


def stats(root: Path = ROOT, locales_dir: Path | None = None) -> dict[str, dict[str, int]]:
    """Per language: messages in the code, translated, untranslated (empty or missing), fuzzy."""
    locales = locales_dir or root / "locales"
    template = extract(root)
    result: dict[str, dict[str, int]] = {}
    for lang in LANGUAGES:
        path = catalog_path(locales, lang)
        catalog = load_catalog(path) if path.exists() else _new_catalog(lang)
        counts = {"messages": 0, "translated": 0, "untranslated": 0, "fuzzy": 0}
        for wanted in template:
            if not wanted.id:
                continue
            counts["messages"] += 1
            msgid, context = _key(wanted)
            have = catalog.get(msgid, context=context)
            if have is None or not _has_text(have):
                counts["untranslated"] += 1
            elif have.fuzzy:
                counts["fuzzy"] += 1
            else:
                counts["translated"] += 1
        result[lang] = counts
    return result


def _has_text(message: Message) -> bool:
    if isinstance(message.string, (list, tuple)):
        return bool(message.string) and all(message.string)
    return bool(message.string)


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("check", "update", "stats"))
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    parser.add_argument(
        "--drop-obsolete", action="store_true", help="update: forget entries no longer in code"
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    if args.command == "update":
        for path in update(root, drop_obsolete=args.drop_obsolete):
            print(f"wrote {_relative(path, root)}")
        return 0
    if args.command == "stats":
        for lang, counts in stats(root).items():
            print(
                f"{lang:>3}: {counts['untranslated']} untranslated, {counts['fuzzy']} fuzzy, "
                f"{counts['translated']} of {counts['messages']} translated"
            )
        return 0
    report = check(root)
    for line in report.warnings:
        print(f"warning: {line}")
    for line in report.errors:
        print(f"error: {line}")
    if report.errors:
        print(f"{len(report.errors)} problem(s); see locales/README.md", file=sys.stderr)
        return 1
    print("i18n check: all catalogs complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
