"""Keeps the "what to do" guide's four languages in step; run by CI (`make lint`) and translators.

    python tools/guide_check.py          # the guide in locales/guide/
    python tools/guide_check.py DIR      # another folder of <language>.toml files

Exit 1 with one line per problem: a page missing or extra in a language, pages out of order, a
key one language has and another lacks, an empty title or text, a text over 1,000 characters or
not valid Telegram HTML, a Cyrillic letter in Crimean Tatar. The rules are `bot.guide`'s, the
same the bot applies at start and `python -m bot guide import` applies before storing a version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: make `bot` importable
    sys.path.insert(0, str(ROOT))

from bot.guide import bundled_sources, check_sources, default_guide_dir, guide_path  # noqa: E402


def check(directory: Path) -> list[str]:
    sources = bundled_sources(directory)
    names = {language: str(guide_path(directory, language)) for language in sources}
    return check_sources(sources, names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=default_guide_dir())
    args = parser.parse_args(argv)
    problems = check(args.directory)
    for problem in problems:
        print(problem)
    if problems:
        print(f"guide check: {len(problems)} problem(s)")
        return 1
    print("guide check: the four languages are in step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
