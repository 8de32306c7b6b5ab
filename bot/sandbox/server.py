"""A local Telegram Bot API server for tests, benchmarks and trying the bot out.

The real PTB `Application` polls it over HTTP unchanged (`base_url=server.base_url`), tests drive
the client side in-process (`send_text`, `press`, `messages`, `wait_for_messages`), and a web
page at `web_url` lets a person chat with the bot as a family member, monitor or staff member.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.sandbox import botapi, inject
from bot.sandbox.flood import FloodLimiter
from bot.sandbox.params import ApiError, Params
from bot.sandbox.state import (
    BotMessage,
    CallbackQuery,
    Faults,
    SandboxChat,
    SandboxUser,
    Stats,
    UserMessage,
    World,
)
from bot.sandbox.testapi import add_test_api

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
_Builder = Callable[[SandboxUser, SandboxChat, int], dict[str, Any]]
_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


class SandboxServer:
    """The sandbox: Bot API over HTTP, a test API, the web page, and in-process helpers."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.world = World()
        self.stats = Stats()
        self.faults = Faults()
        self.flood = FloodLimiter()
        self.clock: Callable[[], float] = time.monotonic
        self.bot_id = 0
        self.bot_username = "hotline_sandbox_bot"
        self._cursors: dict[int, int] = {}
        self._new_user_ids = iter(range(10_001, 1_000_000_000))
        self.personas: dict[str, int] = {}
        for name, (user_id, first_name) in PERSONAS.items():
            self.add_user(user_id, first_name=first_name)
            self.personas[name] = user_id

    # -- lifecycle -------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024)
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
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._closing = True
        self.world.notifier.notify()
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
        return web.Response(body=stored[0], content_type="application/octet-stream")

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
            if name in botapi.SEND_METHODS:
                dropped = await self._send_faults(request, name, params)
                if dropped is not None:
                    return dropped
            if name == "getUpdates":
                result = await self._get_updates(params)
            else:
                context = botapi.BotContext(self.world, self.stats, self.bot_id, self.bot_username)
                result = await botapi.METHODS[name](context, params)
        except ApiError as err:
            if err.code == 429:
                self.stats.status_429 += 1
            elif err.code == 403:
                self.stats.status_403 += 1
            self.world.notifier.notify()  # error counters wake waiters like messages do
            return _json(err.to_api(), err.code)
        return _json({"ok": True, "result": result})

    async def _send_faults(
        self, request: web.Request, name: str, params: Params
    ) -> web.StreamResponse | None:
        """Latency, dropped connections, forced and flood 429s, in that order."""
        faults = self.faults
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        if name in faults.drop_methods:
            fire, faults.drop_remaining = Faults.take(faults.drop_remaining)
            if fire:
                self.stats.dropped += 1
                self.world.notifier.notify()
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
        if name in faults.retry_methods:
            fire, faults.retry_remaining = Faults.take(faults.retry_remaining)
            if fire:
                raise self._too_many(faults.retry_after)
        if self.flood.enabled:
            chat_id = params.get_int("chat_id") if params.has("chat_id") else None
            retry = self.flood.check(chat_id, self.clock())
            if retry is not None:
                raise self._too_many(retry)
        return None

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

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        world = self.world
        if world.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get_int("offset", 0) or 0
        if offset > 0:
            world.updates = [u for u in world.updates if u["update_id"] >= offset]
        elif offset < 0:
            world.updates = world.updates[offset:]
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
        return self._pending(filtered)[:limit]

    # -- the client side: users, chats and what they do ------------------------------------

    def add_user(
        self,
        user_id: int | None = None,
        first_name: str = "Test",
        language_code: str | None = "uk",
        **extra: Any,
    ) -> SandboxUser:
        """A user with a private chat with the bot; a fresh id when none is given."""
        if user_id is None:
            user_id = next(self._new_user_ids)
            while user_id in self.world.users:
                user_id = next(self._new_user_ids)
        user = SandboxUser(user_id, first_name, language_code, **extra)
        self.world.users[user_id] = user
        self.world.chats[user_id] = SandboxChat(user_id, "private", user=user)
        return user

    def add_group(self, chat_id: int, title: str, chat_type: str | None = None) -> SandboxChat:
        """A group (or supergroup for ids below -10**12) the bot is a member of."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        kind = chat_type or ("supergroup" if chat_id < -(10**12) else "group")
        chat = SandboxChat(chat_id, kind, title=title)
        self.world.chats[chat_id] = chat
        return chat

    def user(self, user_id: int) -> SandboxUser:
        """The user, created on first use so tests can just pick an id."""
        return self.world.users.get(user_id) or self.add_user(user_id)

    def block_bot(self, user_id: int) -> None:
        self.user(user_id).blocked_bot = True

    def unblock_bot(self, user_id: int) -> None:
        self.user(user_id).blocked_bot = False

    def _chat(self, user_id: int, chat_id: int | None) -> SandboxChat:
        chat = self.world.chats.get(user_id if chat_id is None else chat_id)
        if chat is None:
            raise KeyError(f"no chat {chat_id}; add it with add_group first")
        return chat

    def _post_message(
        self,
        user_id: int,
        chat_id: int | None,
        build: Callable[[SandboxUser, SandboxChat, int], dict[str, Any]],
    ) -> int:
        user = self.user(user_id)
        chat = self._chat(user_id, chat_id)
        message_id = self.world.next_message_id(chat.id)
        message = build(user, chat, message_id)
        self.world.user_messages.setdefault(chat.id, []).append(
            UserMessage(
                message_id,
                chat.id,
                user.id,
                message.get("text", message.get("caption")),
                message,
                self.world.next_seq(),
            )
        )
        self.world.push_update({"message": message})
        return message_id

    async def send_text(self, user_id: int, text: str, chat_id: int | None = None) -> int:
        """The user sends `text` (in their private chat, or `chat_id`); returns its message id."""
        return self._post_message(
            user_id, chat_id, lambda u, c, m: inject.text_message(u, c, m, text)
        )

    async def send_photo(
        self, user_id: int, caption: str | None = None, chat_id: int | None = None
    ) -> int:
        file_id, unique = self.world.next_file_id("photo")
        self.world.files[file_id] = (botapi._TINY_PNG, "photo.png")

        def build(user: SandboxUser, chat: SandboxChat, message_id: int) -> dict[str, Any]:
            message = inject.base_message(user, chat, message_id)
            message["photo"] = botapi.photo_sizes(file_id, unique, len(botapi._TINY_PNG))
            return inject.with_caption(message, caption)

        return self._post_message(user_id, chat_id, build)

    async def send_document(
        self,
        user_id: int,
        file_name: str = "document.pdf",
        content: bytes = b"%PDF-1.4 sandbox",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> int:
        file_id, unique = self.world.next_file_id("document")
        self.world.files[file_id] = (content, file_name)

        def build(user: SandboxUser, chat: SandboxChat, message_id: int) -> dict[str, Any]:
            message = inject.base_message(user, chat, message_id)
            message["document"] = {
                "file_id": file_id,
                "file_unique_id": unique,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": len(content),
            }
            return inject.with_caption(message, caption)

        return self._post_message(user_id, chat_id, build)

    async def send_sticker(self, user_id: int, chat_id: int | None = None) -> int:
        """A message kind the bot probably does not handle, for robustness tests."""
        file_id, unique = self.world.next_file_id("sticker")

        def build(user: SandboxUser, chat: SandboxChat, message_id: int) -> dict[str, Any]:
            message = inject.base_message(user, chat, message_id)
            message["sticker"] = {
                "file_id": file_id,
                "file_unique_id": unique,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "🙂",
            }
            return message

        return self._post_message(user_id, chat_id, build)

    async def edit_text(
        self, user_id: int, message_id: int, text: str, chat_id: int | None = None
    ) -> None:
        """The user edits one of their messages: an `edited_message` update."""
        user = self.user(user_id)
        chat = self._chat(user_id, chat_id)
        message = inject.text_message(user, chat, message_id, text)
        message["edit_date"] = int(time.time())
        self.world.push_update({"edited_message": message})

    async def press(
        self, user_id: int, message_id: int, data: str, chat_id: int | None = None
    ) -> str:
        """The user taps an inline button; any `data` is delivered (tests forge callbacks)."""
        user = self.user(user_id)
        chat = self._chat(user_id, chat_id)
        pressed = self.world.find_bot_message(chat.id, message_id)
        if pressed is not None and not pressed.deleted:
            message = pressed.to_api()
        else:  # Telegram's InaccessibleMessage
            message = {"chat": chat.to_api(), "message_id": message_id, "date": 0}
        query = CallbackQuery(self.world.next_callback_id(), user.id, chat.id, message_id, data)
        self.world.callbacks[query.id] = query
        self.world.push_update(
            {
                "callback_query": {
                    "id": query.id,
                    "from": user.to_api(),
                    "message": message,
                    "chat_instance": inject.chat_instance(chat.id),
                    "data": data,
                }
            }
        )
        return query.id

    async def press_button(
        self, user_id: int, message: BotMessage, label: str, chat_id: int | None = None
    ) -> str:
        """Tap the button labelled `label` on `message`."""
        return await self.press(user_id, message.message_id, message.button_data(label), chat_id)

    async def send_update(self, raw: dict[str, Any]) -> int:
        """Queue any raw update (an `update_id` is added when missing); returns the update id."""
        return int(self.world.push_update(dict(raw))["update_id"])

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
        return list(self.world.updates)

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
    ) -> None:
        """The next `count` matching requests (None: all until `heal`) answer 429."""
        self.faults.retry_remaining = count
        self.faults.retry_after = max(1, retry_after)
        self.faults.retry_methods = frozenset(methods)

    def drop_connections(
        self, count: int | None = None, methods: Iterable[str] = botapi.SEND_METHODS
    ) -> None:
        """The next `count` matching requests (None: all until `heal`) get no answer at all."""
        self.faults.drop_remaining = count
        self.faults.drop_methods = frozenset(methods)

    def set_latency(self, seconds: float) -> None:
        """An artificial round trip added to every send method."""
        self.faults.latency = max(0.0, seconds)

    def heal(self) -> None:
        """Clear every fault and flood limit."""
        self.faults = Faults()
        self.flood = FloodLimiter()
