"""Settings: defaults, parsing, and one clear line with exit code 2 for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import DEFAULT_DATABASE_URL, TELEGRAM_API_BASE_URL, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("HOTLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults() -> None:
    settings = load_settings()
    assert settings.bot_token is None
    assert settings.api_base_url == TELEGRAM_API_BASE_URL
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.default_language == "uk"
    assert settings.admin_ids == frozenset()
    assert settings.sqlite_path == Path("./var/hotline.db")


def test_values_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("HOTLINE_ADMIN_IDS", " 11, 22 ,33")
    monkeypatch.setenv("HOTLINE_API_BASE_URL", "http://127.0.0.1:8081/bot")
    monkeypatch.setenv("HOTLINE_DEFAULT_LANGUAGE", "crh")
    monkeypatch.setenv("HOTLINE_STAFF_CHAT_ID", "-100123")
    settings = load_settings()
    assert settings.bot_token is not None and settings.bot_token.get_secret_value() == "123:abc"
    assert settings.admin_ids == frozenset({11, 22, 33})
    assert settings.default_language == "crh"
    assert settings.staff_chat_id == -100123


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HOTLINE_DEFAULT_LANGUAGE=en\n")
    assert load_settings().default_language == "en"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOTLINE_ADMIN_IDS", "12,abc"),
        ("HOTLINE_DEFAULT_LANGUAGE", "de"),
        ("HOTLINE_BOT_TOKEN", "not-a-token"),
        ("HOTLINE_DATABASE_URL", "mysql://x"),
        ("HOTLINE_API_BASE_URL", "ftp://x"),
        ("HOTLINE_WEBHOOK_PORT", "99999"),
    ],
)
def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{name}: ")
    assert "\n" not in str(caught.value)


def test_cli_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_ADMIN_IDS"] = "12,abc"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: HOTLINE_ADMIN_IDS: ")
    assert "Traceback" not in result.stderr


def test_cli_wrong_data_key_exits_2(tmp_path: Path) -> None:
    from storage.crypto import generate_key

    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        HOTLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/h.db",
        HOTLINE_DATA_KEY=generate_key(),
        PYTHONPATH=str(REPO),
    )
    first = subprocess.run(
        [sys.executable, "-m", "bot", "staff", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    env["HOTLINE_DATA_KEY"] = generate_key()
    second = subprocess.run(
        [sys.executable, "-m", "bot", "staff", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 2
    assert second.stderr.strip() == ("error: HOTLINE_DATA_KEY does not open this database's data")


def test_cli_unreachable_bot_api_is_one_line_without_the_token(tmp_path: Path) -> None:
    import socket

    from storage.crypto import generate_key

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        HOTLINE_BOT_TOKEN="123456:SECRET-TOKEN",
        HOTLINE_API_BASE_URL=f"http://127.0.0.1:{port}/bot",
        HOTLINE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/h.db",
        HOTLINE_DATA_KEY=generate_key(),
        PYTHONPATH=str(REPO),
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        "error: cannot reach the Bot API at HOTLINE_API_BASE_URL"
    )
    assert "Traceback" not in result.stderr and "SECRET-TOKEN" not in result.stderr
