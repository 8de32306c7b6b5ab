"""`python -m bot export` and `python -m bot decrypt-export`: the admin's export on the server.

    python -m bot export --what cases --format xlsx --anonymised
    python -m bot export --what cases --format csv --encrypt --out cases.csv.enc
    python -m bot decrypt-export cases.csv.enc cases.csv

The passphrase comes from HOTLINE_EXPORT_PASSPHRASE or is asked twice on the terminal (never a
command-line argument: those are visible to other users in the process list). The export is
audited (actor 0, the command line). Prints counts only.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from bot.app import open_services
from bot.settings import Settings
from jobs.export_crypto import WrongPassphrase, decrypt_chunks
from jobs.export_files import Format, file_name, write_export
from storage import export

CLI_ACTOR = 0
PASSPHRASE_VARIABLE = "HOTLINE_EXPORT_PASSPHRASE"  # noqa: S105 - the name of a variable


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("export", help="export cases, events or the audit log to a file")
    run.add_argument("--what", choices=[w.value for w in export.What], required=True)
    run.add_argument("--format", choices=[f.value for f in Format], required=True)
    run.add_argument("--anonymised", action="store_true", help="no names, no ids (partners)")
    run.add_argument(
        "--encrypt", action="store_true", help=f"to a passphrase ({PASSPHRASE_VARIABLE})"
    )
    run.add_argument("--out", type=Path, help="file to write (default: a dated name here)")
    back = commands.add_parser("decrypt-export", help="decrypt an export made with --encrypt")
    back.add_argument("source", type=Path)
    back.add_argument("target", type=Path)


def passphrase(*, confirm: bool) -> str:
    given = os.environ.get(PASSPHRASE_VARIABLE)
    if given:
        return given
    first = getpass.getpass("passphrase: ")
    if confirm and getpass.getpass("again: ") != first:
        raise SystemExit("error: the passphrases differ")
    if not first:
        raise SystemExit("error: an empty passphrase")
    return first


async def run_export(args: argparse.Namespace, settings: Settings) -> int:
    sheet = export.sheet(export.What(args.what), args.anonymised)
    file_format = Format(args.format)
    secret = passphrase(confirm=True) if args.encrypt else None
    services = await open_services(settings, migrate=False)
    try:
        now = services.clock()
        day = now.date().isoformat()
        out = args.out or Path(file_name(sheet, file_format, encrypted=args.encrypt, day=day))
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as target:
            count = await write_export(
                services.sessions, services.cipher, sheet, file_format, target, passphrase=secret
            )
        async with services.sessions() as session, session.begin():
            export.record_export(
                session, actor_id=CLI_ACTOR, chosen=sheet, file_format=file_format,
                encrypted=args.encrypt, count=count, now=now,
            )  # fmt: skip
    finally:
        await services.engine.dispose()
    print(f"{out}: {count} rows")
    return 0


def run_decrypt(args: argparse.Namespace) -> int:
    """Write to a temporary name and keep it only when the whole file decrypted."""
    partial = args.target.with_name(args.target.name + ".partial")
    try:
        with args.source.open("rb") as source, partial.open("wb") as target:
            for chunk in decrypt_chunks(source, passphrase(confirm=False)):
                target.write(chunk)
    except WrongPassphrase as wrong:
        partial.unlink(missing_ok=True)
        print(f"error: {wrong}", file=sys.stderr)
        return 1
    partial.replace(args.target)
    print(f"{args.target}: decrypted")
    return 0
