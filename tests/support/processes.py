"""`python -m bot run` as a real process against the in-test sandbox: started, watched through its
log lines (waited for, never slept on), stopped with SIGTERM or killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.sandbox.server import SandboxServer
from tests.support.harness import TEST_TOKEN

REPO = Path(__file__).resolve().parents[2]


def bot_env(
    sandbox: SandboxServer, database_url: str, data_key: str, **extra: str
) -> dict[str, str]:
    """The environment of a bot process on `database_url`, polling the sandbox; `extra` are
    further HOTLINE_* settings by their lower-case names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        PYTHONPATH=str(REPO),
        HOTLINE_BOT_TOKEN=TEST_TOKEN,
        HOTLINE_API_BASE_URL=sandbox.base_url,
        HOTLINE_DATABASE_URL=database_url,
        HOTLINE_DATA_KEY=data_key,
    )
    env.update({f"HOTLINE_{name.upper()}": value for name, value in extra.items()})
    return env


class BotProcess:
    """One `python -m bot ...` process; its stdout and stderr are read line by line."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(), name=f"{name}: output")

    @classmethod
    async def start(cls, name: str, env: dict[str, str], cwd: Path, *args: str) -> BotProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *(args or ("run",)), cwd=cwd, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(process, name)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, text: str, timeout: float = 60.0) -> str:  # noqa: ASYNC109 - the waiting helpers take explicit timeouts
        """The first line holding `text`, once it was written; fails if the process ends (or
        `timeout` passes) without writing it."""

        def found() -> str | None:
            return next((line for line in self.lines if text in line), None)

        async def wait() -> str:
            async with self._changed:
                while (line := found()) is None:
                    if self._reader.done():
                        raise AssertionError(
                            f"{self.name} ended (exit {self.process.returncode}) without "
                            f"{text!r}:\n{self.output}"
                        )
                    await self._changed.wait()
                return line

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} did not write {text!r} within {timeout}s:\n{self.output}"
            ) from None

    async def kill(self) -> None:
        """SIGKILL: the process ends at once, nothing of it runs any more."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()

    async def stop(self, timeout: float = 60.0) -> int:  # noqa: ASYNC109
        """SIGTERM (a clean stop), SIGKILL if it takes longer than `timeout`; the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.kill()
        await asyncio.gather(self._reader, return_exceptions=True)
        assert self.process.returncode is not None
        return self.process.returncode
