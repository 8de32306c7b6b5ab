"""The systemd units in deploy/ (README, "Running in production") are checked, not just shipped.

`systemd-analyze verify` (where the machine has it) reads each unit as systemd would: any
warning (an unknown key, a bad value, a command that is not there) fails the test. Always:
each ExecStart runs a command the CLI parses (`python -m bot ...`), each EnvironmentFile is one
of the templates beside the units and names only settings bot/settings.py knows (with values
it accepts), and the paths agree (the data directory is the one writable place, a SQLite
database lives in it, every unit runs the same interpreter as the same user).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.__main__ import _parser
from bot.settings import ENV_PREFIX, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
ETC = "/etc/hotline-bot/"
INSTALL = "/opt/hotline-bot/.venv/bin/python"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "Restart": "on-failure",
    "CapabilityBoundingSet": "",
}
MAX_EXPOSURE = 2.0
"""`systemd-analyze security` scores 0 (locked down) to 10 (exposed); 'OK' is below 4."""


@dataclass
class Unit:
    path: Path
    entries: dict[str, list[tuple[str, str]]]

    def values(self, section: str, key: str) -> list[str]:
        return [value for name, value in self.entries.get(section, []) if name == key]

    def one(self, section: str, key: str) -> str:
        found = self.values(section, key)
        assert len(found) == 1, f"{self.path.name}: [{section}] {key} set {len(found)} times"
        return found[0]


def read_unit(path: Path) -> Unit:
    """systemd's format: sections, keys that may repeat (so not configparser's strict dict)."""
    entries: dict[str, list[tuple[str, str]]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            entries.setdefault(section, [])
            continue
        key, sep, value = line.partition("=")
        assert sep and section, f"{path.name}: not a unit line: {raw!r}"
        entries[section].append((key.strip(), value.strip()))
    return Unit(path, entries)


def read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=value: {raw!r}"
        values[key.strip()] = value.strip()
    return values


def cli_commands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_there_are_units_for_the_bot_and_its_workers() -> None:
    names = {unit.name for unit in UNITS}
    assert {"hotline-bot.service", "hotline-deliver@.service"} <= names


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_unit_runs_a_cli_command_that_exists(path: Path) -> None:
    unit = read_unit(path)
    argv = shlex.split(unit.one("Service", "ExecStart"))
    assert argv[:3] == [INSTALL, "-m", "bot"], f"{path.name}: runs {argv[:3]}"
    command = argv[3]
    if command == "deliver" and "deliver" not in cli_commands():
        pytest.skip("`python -m bot deliver` is not on this branch yet (issue 16, workers)")
    assert command in cli_commands(), f"{path.name}: python -m bot has no {command!r}"
    _parser().parse_args(argv[3:])  # its options too (SystemExit 2 if unknown)


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_unit_settings_are_known_and_valid(path: Path) -> None:
    unit = read_unit(path)
    files = unit.values("Service", "EnvironmentFile")
    assert files, f"{path.name}: no EnvironmentFile"
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    values: dict[str, str] = {}
    for file in files:
        assert file.startswith(ETC), f"{path.name}: {file} outside {ETC}"
        template = DEPLOY / file.removeprefix(ETC)
        assert template.is_file(), f"{path.name}: no template deploy/{template.name} for {file}"
        values.update(read_env(template))
    for assignment in unit.values("Service", "Environment"):
        for pair in shlex.split(assignment):
            key, _, value = pair.partition("=")
            if key.startswith(ENV_PREFIX):
                values[key] = value.replace("%i", "1")  # the first instance of a template
    unknown = sorted(set(values) - known)
    assert not unknown, f"{path.name}: settings bot/settings.py does not know: {unknown}"
    # the values given parse (the empty ones are the operator's to fill in)
    given = {key.removeprefix(ENV_PREFIX).lower(): v for key, v in values.items() if v}
    Settings(_env_file=None, **given)  # type: ignore[call-arg]


def test_the_data_key_lives_alone_in_its_own_file() -> None:
    """Backed up apart from the database and the other settings (README, SECURITY.md)."""
    assert set(read_env(DEPLOY / "data-key.env")) == {"HOTLINE_DATA_KEY"}
    for template in DEPLOY.glob("*.env"):
        if template.name != "data-key.env":
            assert "HOTLINE_DATA_KEY" not in read_env(template), template.name


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_unit_is_hardened_and_writes_only_its_data_directory(path: Path) -> None:
    unit = read_unit(path)
    for key, wanted in HARDENING.items():
        assert unit.one("Service", key) == wanted, f"{path.name}: {key}"
    state = f"/var/lib/{unit.one('Service', 'StateDirectory')}"
    assert unit.values("Service", "ReadWritePaths") == [state]
    assert unit.one("Service", "WorkingDirectory") == state
    for template in DEPLOY.glob("*.env"):
        for line in template.read_text(encoding="utf-8").splitlines():
            found = re.search(r"sqlite\+aiosqlite:///(\S+)", line)
            if found:  # a SQLite database (active or offered in a comment) in the data dir
                assert Path(found.group(1)).parent == Path(state), line


def test_every_unit_runs_as_the_same_user_with_the_same_settings() -> None:
    units = [read_unit(path) for path in UNITS]
    assert len({unit.one("Service", "User") for unit in units}) == 1
    assert len({tuple(unit.values("Service", "EnvironmentFile")) for unit in units}) == 1
    ports = set()
    for unit in units:
        for assignment in unit.values("Service", "Environment"):
            for pair in shlex.split(assignment):
                if pair.startswith("HOTLINE_METRICS_PORT="):
                    ports.add(pair.partition("=")[2])
    assert len(ports) == len(units), "each process needs a metrics port of its own"


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not on this machine")
@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_systemd_reads_the_unit_without_a_warning(path: Path, tmp_path: Path) -> None:
    """As systemd would load it, with the interpreter pointed at this machine's (verify checks
    the command exists)."""
    assert SYSTEMD_ANALYZE is not None
    copy = tmp_path / path.name
    copy.write_text(path.read_text(encoding="utf-8").replace(INSTALL, sys.executable), "utf-8")
    name = copy.name.replace("@.", "@1.")  # a template is verified through an instance
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not output, output
    security = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    if security.returncode != 0 or score is None:
        pytest.skip(f"systemd-analyze security --offline is not available: {security.stderr}")
    assert float(score.group(1)) <= MAX_EXPOSURE, security.stdout
