"""A local Telegram Bot API server for tests, benchmarks and trying the bot out.

The real PTB `Application` polls it over HTTP unchanged (`base_url=server.base_url`), tests drive
the client side in-process (`send_text`, `press`, `messages`, `wait_for_messages`), and a web
page at `web_url` lets a person chat with the bot as a family member, monitor or staff member.
"""

from __future__ import annotations

import asyncio
import errno
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import hdrs, web

from bot.sandbox import botapi
from bot.sandbox.errors import SandboxStartError
from bot.sandbox.flood import FloodLimiter
from bot.sandbox.params import ApiError, Params
from bot.sandbox.state import (
    BotMessage,
    CallbackQuery,
    Faults,
    Refusal,
    Stats,
    World,
)
from bot.sandbox.testapi import add_test_api
from bot.sandbox.users import UserSide
from bot.sandbox.webhook import WebhookPusher

STATIC = Path(__file__).parent / "static"
PERSONAS: dict[str, tuple[int, str]] = {
    "family": (1001, "Olena"),
    "monitor": (2001, "Monitor"),
    "staff": (3001, "Staff"),
}
UPDATE_KINDS = (
    "message",
    "edited_message",
    "callback_query",
    "channel_post",
    "my_chat_member",
    "chat_member",
)
_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")


_MAGIC = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
)


def _media_type(data: bytes, name: str) -> str:
    """Images, audio and video as themselves (the page shows them); anything else a download."""
    guessed = mimetypes.guess_type(name)[0] or next(
        (kind for magic, kind in _MAGIC if data.startswith(magic)), None
    )
    if guessed and guessed.split("/")[0] in ("image", "audio", "video") and "svg" not in guessed:
        return guessed
    return "application/octet-stream"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


class SandboxServer(UserSide):
    """The sandbox: Bot API over HTTP, a test API, the web page, and in-process helpers."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, first_update_id: int = 1) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.world = World(first_update_id)
        self.stats = Stats()
        self.faults = Faults()
        self.flood = FloodLimiter()
        self.clock: Callable[[], float] = time.monotonic
        self.bot_id = 0
        self.bot_username = "hotline_sandbox_bot"
        self._cursors: dict[int, int] = {}
        self.webhook_pusher = WebhookPusher(self.world, self._pending)
        self._poller: web.Request | None = None
        """The getUpdates long poll in progress: a second poller meanwhile gets 409."""
        self._new_user_ids = iter(range(10_001, 1_000_000_000))
        self.personas: dict[str, int] = {}
        for name, (user_id, first_name) in PERSONAS.items():
            self.add_user(user_id, first_name=first_name)
            self.personas[name] = user_id

    @property
    def polling(self) -> bool:
        """A getUpdates long poll is open (a bot instance is polling right now)."""
        return self._poller is not None and _connected(self._poller)

    # -- lifecycle -------------------------------------------------------------------------

    def allowed_hosts(self) -> frozenset[str]:
        """The Host headers the sandbox answers: its loopback names with its port."""
        own = f"[{self.host}]" if ":" in self.host else self.host
        names = {"127.0.0.1", "localhost", "[::1]", own.lower()}
        port = self.port
        hosts = {f"{name}:{port}" for name in names}
        if port == 80:
            hosts |= names
        return frozenset(hosts)

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Only its own Host (no DNS rebinding) and no other site's pages (no CSRF)."""
        hosts = self.allowed_hosts()
        if request.headers.get(hdrs.HOST, "").lower() not in hosts:
            return web.Response(status=421, text="Misdirected Request: unknown Host\n")
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and origin.lower() not in {f"http://{h}" for h in hosts}:
            return web.Response(status=403, text="Forbidden: cross-origin request\n")
        return await handler(request)

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024, middlewares=[self._guard])
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        add_test_api(app, self)
        app.router.add_get("/", self._handle_index)
        app.router.add_static("/static/", STATIC)
        return app

    async def start(self) -> None:
        self._closing = False
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port)
        try:
            await site.start()
        except OSError as error:  # the port is taken (or not ours): leave nothing behind
            await self._runner.cleanup()
            self._runner = None
            reason = (
                "the port is in use (is the sandbox already running?)"
                if error.errno == errno.EADDRINUSE
                else error.strerror or type(error).__name__
            )
            where = f"{self.host}:{self._requested_port}"
            raise SandboxStartError(f"the sandbox cannot listen on {where}: {reason}") from None
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])
        self.webhook_pusher.start()

    async def stop(self) -> None:
        self._closing = True
        self.world.notifier.notify()
        await self.webhook_pusher.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # -- Bot API over HTTP -----------------------------------------------------------------

    async def _handle_index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        stored = self.world.files.get(path.removeprefix("files/"))
        if stored is None:
            return _json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        data, name = stored
        content_type = _media_type(data, name)
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        }
        if content_type == "application/octet-stream":
            headers["Content-Disposition"] = "attachment"
        return web.Response(body=data, content_type=content_type, headers=headers)

    async def _handle_bot_api(self, request: web.Request) -> web.StreamResponse:
        token_match = _TOKEN.match(request.match_info["token"])
        if token_match is None:
            return _json(ApiError(401, "Unauthorized").to_api(), 401)
        name = botapi.METHOD_NAMES.get(request.match_info["method"].lower())
        counted = name or request.match_info["method"]
        self.stats.requests[counted] = self.stats.requests.get(counted, 0) + 1
        if name is None:
            return _json(ApiError(404, "Not Found").to_api(), 404)
        self.bot_id = int(token_match.group(1))
        try:
            params = await Params.from_request(request)
            if name in botapi.SEND_METHODS or self.faults.covers(name):
                dropped = await self._send_faults(request, name, params)
                if dropped is not None:
                    return dropped
            if name == "getUpdates":
                result = await self._get_updates(params, request)
            else:
                context = botapi.BotContext(self.world, self.stats, self.bot_id, self.bot_username)
                result = await botapi.METHODS[name](context, params)
                if name in botapi.SEND_METHODS:
                    await self._held(params)
        except ApiError as err:
            if err.code == 429:
                self.stats.status_429 += 1
            elif err.code == 403:
                self.stats.status_403 += 1
            elif err.code == 409:
                self.stats.conflicts += 1
            self.world.notifier.notify()  # error counters wake waiters like messages do
            return _json(err.to_api(), err.code)
        return _json({"ok": True, "result": result})

    async def _send_faults(
        self, request: web.Request, name: str, params: Params
    ) -> web.StreamResponse | None:
        """Latency, dropped connections, server errors, forced and flood 429s, in that order.
        Each refusal is recorded (`stats.refusals`) with its method and chat."""
        faults = self.faults
        sending = name in botapi.SEND_METHODS
        chat_id = params.get_int("chat_id") if params.has("chat_id") else None
        if faults.latency > 0 and sending:
            await asyncio.sleep(faults.latency)
        if faults.chats is None or chat_id in faults.chats:
            refusal = self._fault(request, name, chat_id)
            if refusal is not None:
                return refusal
        if sending and self.flood.enabled:
            retry = self.flood.check(chat_id, self.clock())
            if retry is not None:
                self._refused(name, chat_id, "429")
                raise self._too_many(retry)
        return None

    def _fault(
        self, request: web.Request, name: str, chat_id: int | None
    ) -> web.StreamResponse | None:
        """The armed drop, server error or forced 429 for this request, if any."""
        faults = self.faults
        if name in faults.drop_methods:
            fire, faults.drop_remaining = Faults.take(faults.drop_remaining)
            if fire:
                self.stats.dropped += 1
                self._refused(name, chat_id, "dropped")
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
        if name in faults.fail_methods:
            fire, faults.fail_remaining = Faults.take(faults.fail_remaining)
            if fire:
                self.stats.server_errors += 1
                self._refused(name, chat_id, "5xx")
                status = faults.fail_status
                return _json(ApiError(status, _phrase(status)).to_api(), status)
        if name in faults.retry_methods:
            fire, faults.retry_remaining = Faults.take(faults.retry_remaining)
            if fire:
                self._refused(name, chat_id, "429")
                raise self._too_many(faults.retry_after)
        return None

    def _refused(self, method: str, chat_id: int | None, kind: str) -> None:
        self.stats.refusals.append(Refusal(method, chat_id, kind))
        self.world.notifier.notify()

    async def _held(self, params: Params) -> None:
        """Hold the answer of a send that `hold_next_send` armed for its chat, or that
        `slow_answers` slows down."""
        if not params.has("chat_id"):
            return
        chat_id = params.get_int("chat_id") or 0
        faults = self.faults
        if faults.slow_answer > 0 and (faults.slow_chats is None or chat_id in faults.slow_chats):
            await asyncio.sleep(faults.slow_answer)
        release = faults.holds.pop(chat_id, None) if faults.holds else None
        if release is not None:
            await release.wait()

    @staticmethod
    def _too_many(retry_after: int) -> ApiError:
        return ApiError(
            429,
            f"Too Many Requests: retry after {retry_after}",
            {"retry_after": retry_after},
        )

    def _pending(self, allowed: list[str] | None) -> list[dict[str, Any]]:
        if not allowed:
            return list(self.world.updates)
        return [u for u in self.world.updates if any(kind in u for kind in allowed)]

    def _claim_polling(self, request: web.Request) -> None:
        """As Telegram: while one getUpdates long poll is open, another connection's getUpdates
        is refused with 409 (two bot instances on one token). A poller whose connection is gone
        (a stopped or killed bot) holds nothing."""
        current = self._poller
        if (
            current is not None
            and current is not request
            and _connected(current)
            and current.transport is not request.transport
        ):
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        if current is not request:
            self._poller = request
            self.world.notifier.notify()  # a poll began: whoever waits for a poller wakes

    async def _get_updates(
        self, params: Params, request: web.Request | None = None
    ) -> list[dict[str, Any]]:
        world = self.world
        if world.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if request is None:
            return await self._poll(params)
        self._claim_polling(request)
        try:
            return await self._poll(params)
        finally:
            if self._poller is request:
                self._poller = None

    async def _poll(self, params: Params) -> list[dict[str, Any]]:
        world = self.world
        world.confirm_updates(params.get_int("offset", 0) or 0)
        limit = min(max(params.get_int("limit", 100) or 100, 1), 100)
        timeout = min(max(params.get_float("timeout", 0.0), 0.0), 50.0)
        allowed = params.get_json("allowed_updates")
        if isinstance(allowed, list):
            world.allowed_updates = [str(kind) for kind in allowed]
        filtered = world.allowed_updates
        if timeout > 0 and not self._pending(filtered):
            await world.notifier.wait_until(
                lambda: self._closing or bool(self._pending(filtered)), timeout
            )
        handed = self._pending(filtered)[:limit]
        for update in handed:
            world.hand_out(update)
        return handed

    # -- reading what the bot did ----------------------------------------------------------

    def messages(self, chat_id: int, include_deleted: bool = True) -> list[BotMessage]:
        """Every bot message to the chat, in order."""
        found = self.world.bot_messages.get(chat_id, [])
        return [m for m in found if include_deleted or not m.deleted]

    def message(self, chat_id: int, message_id: int) -> BotMessage:
        found = self.world.find_bot_message(chat_id, message_id)
        if found is None:
            raise KeyError(f"no bot message {message_id} in chat {chat_id}")
        return found

    @property
    def answered_callbacks(self) -> list[CallbackQuery]:
        return self.world.answered_callbacks

    @property
    def commands(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """setMyCommands as stored: (canonical scope JSON, language_code) -> commands."""
        return self.world.commands

    def commands_for(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        return self.world.commands.get(botapi.commands_key(scope, language_code), [])

    @property
    def webhook(self) -> dict[str, Any]:
        return self.world.webhook

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot (by its next getUpdates, or a webhook 200)."""
        return list(self.world.updates)

    @property
    def webhook_target(self) -> str | None:
        """Where webhook updates are posted (the local stand-in for the bot's HTTPS address);
        None: not posted."""
        return self.webhook_pusher.target

    @webhook_target.setter
    def webhook_target(self, url: str | None) -> None:
        self.webhook_pusher.target = url
        self.world.notifier.notify()

    def _describe(self, chat_id: int) -> str:
        lines = [f"  #{m.message_id}: {m.plain[:120]!r}" for m in self.messages(chat_id)]
        return "\n".join(lines) or "  (none)"

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109 - the test API is built around explicit timeouts
        """Wait (without sleeping) until `predicate()` holds after some change."""
        if not await self.world.notifier.wait_until(predicate, timeout):
            raise AssertionError(f"condition not met within {timeout}s")

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109 - the test API is built around explicit timeouts
    ) -> list[BotMessage]:
        """Once the chat has at least `count` bot messages in total, all of them."""
        ok = await self.world.notifier.wait_until(
            lambda: len(self.messages(chat_id)) >= count, timeout
        )
        if not ok:
            raise AssertionError(
                f"expected {count} bot messages in chat {chat_id} within {timeout}s, "
                f"got {len(self.messages(chat_id))}:\n{self._describe(chat_id)}"
            )
        return self.messages(chat_id)

    async def next_message(self, chat_id: int, timeout: float = 10.0) -> BotMessage:  # noqa: ASYNC109 - the test API is built around explicit timeouts
        """The next bot message to the chat not yet returned by `next_message`."""
        index = self._cursors.get(chat_id, 0)
        messages = await self.wait_for_messages(chat_id, index + 1, timeout)
        self._cursors[chat_id] = index + 1
        return messages[index]

    async def wait_for_edit(
        self,
        chat_id: int,
        message_id: int,
        timeout: float = 10.0,  # noqa: ASYNC109 - the test API is built around explicit timeouts
        edits: int = 1,
    ) -> BotMessage:
        """Once the message has been edited at least `edits` times in total."""

        def edited() -> bool:
            found = self.world.find_bot_message(chat_id, message_id)
            return found is not None and len(found.edits) >= edits

        if not await self.world.notifier.wait_until(edited, timeout):
            raise AssertionError(
                f"message {message_id} in chat {chat_id} was not edited {edits} time(s) "
                f"within {timeout}s; messages:\n{self._describe(chat_id)}"
            )
        return self.message(chat_id, message_id)

    async def wait_for_callback_answer(self, query_id: str, timeout: float = 10.0) -> CallbackQuery:  # noqa: ASYNC109 - the test API is built around explicit timeouts
        query = self.world.callbacks.get(query_id)
        if query is None:
            raise KeyError(f"no callback query {query_id}")
        if not await self.world.notifier.wait_until(lambda: query.answered, timeout):
            raise AssertionError(f"callback query {query_id} not answered within {timeout}s")
        return query

    async def wait_for_updates_consumed(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - the test API is built around explicit timeouts
        """Once the bot confirmed every queued update (its next getUpdates used the offset)."""
        await self.wait_for(lambda: not self.world.updates, timeout)

    # -- fault injection -------------------------------------------------------------------

    def set_flood_limits(
        self,
        overall_per_second: float | None = 30,
        per_chat_per_second: float | None = 1,
        group_per_minute: float | None = 20,
    ) -> None:
        """Telegram-like limits on send methods; all None switches them off."""
        self.flood = FloodLimiter(overall_per_second, per_chat_per_second, group_per_minute)

    def force_retry_after(
        self,
        count: int | None,
        retry_after: int = 1,
        methods: Iterable[str] = botapi.SEND_METHODS,
        chats: Iterable[int] | None = None,
    ) -> None:
        """The next `count` matching requests (None: all until `heal`) answer 429; `chats`:
        only requests to these chats (for every fault armed)."""
        self._only(chats)
        self.faults.retry_remaining = count
        self.faults.retry_after = max(1, retry_after)
        self.faults.retry_methods = frozenset(methods)

    def drop_connections(
        self,
        count: int | None = None,
        methods: Iterable[str] = botapi.SEND_METHODS,
        chats: Iterable[int] | None = None,
    ) -> None:
        """The next `count` matching requests (None: all until `heal`) get no answer at all."""
        self._only(chats)
        self.faults.drop_remaining = count
        self.faults.drop_methods = frozenset(methods)

    def fail_with(
        self,
        status: int = 502,
        count: int | None = None,
        methods: Iterable[str] = botapi.SEND_METHODS,
        chats: Iterable[int] | None = None,
    ) -> None:
        """The next `count` matching requests (None: all until `heal`) answer `status` (a Bot
        API outage: 502 Bad Gateway, 500, 503...)."""
        self._only(chats)
        self.faults.fail_status = status
        self.faults.fail_remaining = count
        self.faults.fail_methods = frozenset(methods)

    def _only(self, chats: Iterable[int] | None) -> None:
        self.faults.chats = None if chats is None else frozenset(chats)

    def set_latency(self, seconds: float) -> None:
        """An artificial round trip added to every send method."""
        self.faults.latency = max(0.0, seconds)

    def slow_answers(self, seconds: float, chats: Iterable[int] | None = None) -> None:
        """A slow API: each send (to `chats`, or every chat) is carried out at once, as
        Telegram would, but its answer comes `seconds` later, so a client that stops waiting
        sooner cannot know it was delivered."""
        self.faults.slow_answer = max(0.0, seconds)
        self.faults.slow_chats = None if chats is None else frozenset(chats)

    def hold_next_send(self, chat_id: int) -> asyncio.Event:
        """The next send to `chat_id` is carried out (the user sees the message at once) but its
        answer waits until the returned event is set: the bot stands still right after sending,
        as a process killed at that instant would."""
        release = asyncio.Event()
        self.faults.holds[chat_id] = release
        return release

    def heal(self) -> None:
        """Clear every fault and flood limit."""
        self.faults = Faults()
        self.flood = FloodLimiter()
