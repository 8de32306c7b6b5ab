"""The command line: ``python -m bot run|sandbox|migrate|staff|monitor|guide|keygen|rotate-key``.

Every operator mistake (a missing or malformed setting, a wrong data key) ends with one line that
names the variable and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from telegram.error import InvalidToken, NetworkError

from bot.leadership import AnotherInstance
from bot.sandbox.errors import SandboxStartError
from bot.settings import SettingsError, load_settings
from storage.crypto import DataKeyError, generate_key
from storage.db import DatabaseUnwritable, SchemaNotCurrent

EXIT_CONFIG_ERROR = 2
NOTHING_TO_RUN = (
    "HOTLINE_BOT_TOKEN: not set; put a token from @BotFather in .env, "
    "or try the bot locally with `python -m bot sandbox` (or `make run`)"
)
EXIT_UNREACHABLE = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Hotline bot")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the bot against Telegram (needs a token)")
    run.add_argument("--webhook", action="store_true", help="receive updates by webhook")
    run.add_argument(
        "--or-sandbox",
        action="store_true",
        help="with no HOTLINE_BOT_TOKEN, start the local sandbox instead (what `make run` does)",
    )
    run.add_argument("--sandbox-port", type=int, default=8088, help="port of that sandbox (8088)")
    sandbox = commands.add_parser("sandbox", help="run the local sandbox and the bot")
    sandbox.add_argument("--port", type=int, default=8088, help="port of the sandbox (8088)")
    commands.add_parser(
        "deliver",
        help="only send the outbox (PostgreSQL): any number beside the bot share it and the rate",
    )
    commands.add_parser("migrate", help="apply database migrations")
    for role in ("staff", "monitor"):
        sub = commands.add_parser(role, help=f"grant, revoke or list the {role} role")
        sub.add_argument("action", choices=("add", "remove", "list"))
        sub.add_argument("telegram_id", type=int, nargs="?")
    guide = commands.add_parser("guide", help="the 'what to do' guide shown by /guide")
    guide_actions = guide.add_subparsers(dest="action", required=True)
    imported = guide_actions.add_parser(
        "import", help="check guide files (one per language) and make them the guide, no restart"
    )
    imported.add_argument("files", nargs="+", type=Path, metavar="FILE")
    exported = guide_actions.add_parser("export", help="write the guide now shown, one file each")
    exported.add_argument("directory", type=Path, metavar="DIR")
    commands.add_parser("keygen", help="print a fresh data key for HOTLINE_DATA_KEY")
    commands.add_parser("rotate-key", help="re-seal all data with the first HOTLINE_DATA_KEY")
    from bot.cli_export import add_parsers

    add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        print(generate_key())
        return 0
    if args.command == "decrypt-export":
        from bot.cli_export import run_decrypt

        return run_decrypt(args)
    try:
        settings = load_settings()
        sandbox_port = args.port if args.command == "sandbox" else None
        if args.command == "run" and settings.bot_token is None:
            if not args.or_sandbox:
                raise SettingsError(NOTHING_TO_RUN)
            sandbox_port = args.sandbox_port
        if sandbox_port is not None:
            from bot.sandbox_run import run_sandbox

            return asyncio.run(run_sandbox(settings, port=sandbox_port))
        from bot import cli_commands

        return asyncio.run(cli_commands.dispatch(args, settings))
    except (
        SettingsError,
        DataKeyError,
        SandboxStartError,
        DatabaseUnwritable,
        SchemaNotCurrent,
        AnotherInstance,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except InvalidToken:
        print("error: HOTLINE_BOT_TOKEN: the Bot API server refused this token", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except NetworkError as error:
        # The message can carry the request URL, which holds the token: name the class only.
        print(
            f"error: cannot reach the Bot API at HOTLINE_API_BASE_URL ({type(error).__name__});"
            " check the address and the network",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
