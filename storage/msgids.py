"""`N_` marks a msgid for the catalogs where storage keeps it (field labels, questions, reasons);
it is translated where it is shown. The same keyword as `bot.i18n.N_`, so storage does not
depend on the bot package."""

from __future__ import annotations


def N_(message: str) -> str:
    return message
