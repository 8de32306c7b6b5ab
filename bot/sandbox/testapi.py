"""The sandbox's test API (`/sandbox/api/...`): the client side over HTTP, in JSON.

The web page and out-of-process tools (benchmarks, `SandboxClient`) use only this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.web_request import FileField

from bot.sandbox.state import BotMessage, UserMessage

if TYPE_CHECKING:
    from bot.sandbox.server import SandboxServer

PREFIX = "/sandbox/api"
MAX_WAIT = 30.0


FILE_URL = "file/botpage/files/"  # the Bot API file route, relative to the page


def attachment_json(kind: str, message: dict[str, Any]) -> dict[str, Any] | None:
    """What the page shows of a message's attachment: its kind, file URL, name, place."""
    if kind == "text":
        return None
    value: Any = message[kind]
    if kind == "location":
        return {"kind": kind, "latitude": value["latitude"], "longitude": value["longitude"]}
    if kind == "contact":
        name = " ".join(filter(None, [value.get("first_name"), value.get("last_name")]))
        return {"kind": kind, "name": name, "phone_number": value.get("phone_number")}
    file = value[-1] if isinstance(value, list) else value
    return {
        "kind": kind,
        "file_id": file["file_id"],
        "url": FILE_URL + quote(file["file_id"]),
        "name": file.get("file_name"),
        "mime_type": file.get("mime_type"),
        "duration": file.get("duration"),
    }


def bot_message_json(message: BotMessage) -> dict[str, Any]:
    """A bot message for the page; once deleted, only that it was (its content is gone)."""
    data: dict[str, Any] = {
        "message_id": message.message_id,
        "chat_id": message.chat_id,
        "from_bot": True,
        "kind": message.kind,
        "protect_content": message.protect_content,
        "deleted": message.deleted,
        "edited": bool(message.edits),
        "seq": message.seq,
    }
    if message.deleted:
        return {**data, "text": "", "html": "", "buttons": [], "url_buttons": [], "photo": False}
    return {
        **data,
        "text": message.plain,
        "html": message.safe_html,
        "raw": message.text,
        "parse_mode": message.parse_mode,
        "buttons": [[{"text": t, "data": d} for t, d in row] for row in message.buttons],
        "url_buttons": [
            [bool(b.get("url")) for b in row]
            for row in (message.reply_markup or {}).get("inline_keyboard", [])
        ],
        "reply_keyboard": message.reply_keyboard,
        "remove_keyboard": message.remove_keyboard,
        "photo": message.photo is not None,
        "document": (message.document or {}).get("file_name"),
        "attachment": attachment_json(message.kind, message.media()),
        "reply_to": message.reply_to_message_id,
    }


def user_message_json(message: UserMessage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "message_id": message.message_id,
        "chat_id": message.chat_id,
        "from_bot": False,
        "user_id": message.user_id,
        "kind": message.kind,
        "deleted": message.deleted,
        "edited": message.edited,
        "seq": message.seq,
    }
    if message.deleted:
        return {**data, "text": ""}
    reply = message.raw.get("reply_to_message")
    return {
        **data,
        "text": message.text or "",
        "attachment": attachment_json(message.kind, message.raw),
        "reply_to": reply["message_id"] if reply else None,
    }


UPLOAD_KINDS = ("photo", "document", "voice", "audio", "video")


def upload_kind(mime_type: str) -> str:
    """How a file picked on the page is sent when the person did not choose."""
    if mime_type in ("image/jpeg", "image/png", "image/webp"):
        return "photo"
    if mime_type in ("audio/ogg", "audio/opus", "audio/webm"):
        return "voice"
    if mime_type.startswith("audio/"):
        return "audio"
    if mime_type.startswith("video/"):
        return "video"
    return "document"


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON body") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None


def add_test_api(app: web.Application, server: SandboxServer) -> None:
    """Register the test API routes for `server` on `app`."""
    world = server.world

    def user_json(user_id: int) -> dict[str, Any]:
        user = server.user(user_id)
        return {**user.to_api(), "blocked_bot": user.blocked_bot}

    async def personas(request: web.Request) -> web.Response:
        return web.json_response(
            {"personas": [{"name": n, **user_json(i)} for n, i in server.personas.items()]}
        )

    async def create_user(request: web.Request) -> web.Response:
        body = await _body(request)
        user_id = body.get("user_id")
        user = server.add_user(
            None if user_id is None else _int(user_id, "user_id"),
            first_name=str(body.get("first_name") or "Test"),
            language_code=body.get("language_code", "uk"),
        )
        return web.json_response(user_json(user.id))

    async def update_user(request: web.Request) -> web.Response:
        user = server.user(_int(request.match_info["user_id"], "user_id"))
        body = await _body(request)
        if "language_code" in body:
            user.language_code = body["language_code"] or None
        if "first_name" in body:
            user.first_name = str(body["first_name"])
        if "blocked_bot" in body:
            user.blocked_bot = bool(body["blocked_bot"])
        return web.json_response(user_json(user.id))

    def chat_of(body: dict[str, Any], user_id: int) -> int | None:
        chat_id = body.get("chat_id")
        return None if chat_id in (None, "", user_id) else _int(chat_id, "chat_id")

    async def send(request: web.Request) -> web.Response:
        body = await _body(request)
        user_id = _int(body.get("user_id"), "user_id")
        if "language_code" in body:
            server.user(user_id).language_code = body["language_code"] or None
        text = str(body.get("text") or "")
        if not text:
            raise web.HTTPBadRequest(text="text is empty")
        reply_to = body.get("reply_to")
        try:
            message_id = await server.send_text(
                user_id,
                text,
                chat_of(body, user_id),
                reply_to=None if reply_to is None else _int(reply_to, "reply_to"),
            )
        except KeyError as error:
            raise web.HTTPBadRequest(text=str(error.args[0])) from None
        return web.json_response({"message_id": message_id})

    async def upload(request: web.Request) -> web.Response:
        """A file from the page (multipart: user_id, file, kind, caption, chat_id)."""
        try:
            form = await request.post()
        except ValueError:
            raise web.HTTPBadRequest(text="expected a multipart form") from None
        file = form.get("file")
        if not isinstance(file, FileField):
            raise web.HTTPBadRequest(text="no file in the form")
        user_id = _int(form.get("user_id"), "user_id")
        content = file.file.read()
        if not content:
            raise web.HTTPBadRequest(text="the file is empty")
        mime_type = file.content_type or "application/octet-stream"
        kind = str(form.get("kind") or "auto")
        if kind == "auto":
            kind = upload_kind(mime_type)
        if kind not in UPLOAD_KINDS:
            raise web.HTTPBadRequest(text=f"kind must be one of {', '.join(UPLOAD_KINDS)}")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if fields.get("language_code"):
            server.user(user_id).language_code = fields["language_code"]
        message_id = await server.send_file(
            user_id,
            kind,
            content=content,
            file_name=file.filename or None,
            mime_type=mime_type if kind in ("document", "audio", "voice") else None,
            caption=fields.get("caption") or None,
            chat_id=chat_of(fields, user_id),
        )
        return web.json_response({"message_id": message_id, "kind": kind})

    async def press(request: web.Request) -> web.Response:
        body = await _body(request)
        user_id = _int(body.get("user_id"), "user_id")
        query_id = await server.press(
            user_id,
            _int(body.get("message_id"), "message_id"),
            str(body.get("data") or ""),
            chat_of(body, user_id),
        )
        return web.json_response({"callback_query_id": query_id})

    def chat_changes(chat_id: int, since: int) -> list[dict[str, Any]]:
        entries = [bot_message_json(m) for m in server.messages(chat_id) if m.seq > since]
        entries += [
            user_message_json(m) for m in world.user_messages.get(chat_id, []) if m.seq > since
        ]
        return sorted(entries, key=lambda e: (e["message_id"], e["seq"]))

    async def messages(request: web.Request) -> web.Response:
        chat_id = _int(request.query.get("chat_id"), "chat_id")
        since = _int(request.query.get("since", "0"), "since")
        try:
            wait = min(max(float(request.query.get("wait", "0")), 0.0), MAX_WAIT)
        except ValueError:
            raise web.HTTPBadRequest(text="wait must be a number") from None
        if wait > 0:
            await world.notifier.wait_until(
                lambda: (
                    world.seq > since
                    and bool(chat_changes(chat_id, since) or alerts(chat_id, since))
                ),
                wait,
            )
        chat = world.chats.get(chat_id)
        return web.json_response(
            {
                "seq": world.seq,
                "messages": chat_changes(chat_id, since),
                "keyboard": chat.reply_keyboard if chat is not None else None,
                "alerts": alerts(chat_id, since),
            }
        )

    def alerts(chat_id: int, since: int) -> list[dict[str, Any]]:
        return [
            {"text": q.text, "show_alert": q.show_alert, "url": q.url, "seq": q.seq}
            for q in world.answered_callbacks
            if q.chat_id == chat_id and q.seq > since and q.text
        ]

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": server.stats.requests,
                "status_429": server.stats.status_429,
                "status_403": server.stats.status_403,
                "dropped": server.stats.dropped,
                "server_errors": server.stats.server_errors,
                "conflicts": server.stats.conflicts,
                "sends": len(server.stats.sends),
            }
        )

    def faults_json() -> dict[str, Any]:
        faults = server.faults
        return {
            "server_error": {"status": faults.fail_status, "remaining": faults.fail_remaining}
            if faults.fail_methods
            else None,
            "retry_after": {"seconds": faults.retry_after, "remaining": faults.retry_remaining}
            if faults.retry_methods
            else None,
            "drop": {"remaining": faults.drop_remaining} if faults.drop_methods else None,
            "latency": faults.latency,
            "slow_answer": faults.slow_answer,
        }

    def count_of(spec: dict[str, Any]) -> int | None:
        count = spec.get("count")
        return None if count is None else _int(count, "count")

    async def set_faults(request: web.Request) -> web.Response:
        """Switch faults on the send methods from outside the process (benchmarks, trials):
        {"server_error": {"status": 502, "count": null}} answers 502 until healed;
        {"retry_after": {"seconds": 5, "count": 3}}, {"drop": {"count": 2}},
        {"latency": 0.2}; {"slow_answer": 6} (sends carried out at once, answered 6 s later);
        {"heal": true} clears every fault and flood limit."""
        body = await _body(request)
        if body.get("heal"):
            server.heal()
        spec = body.get("server_error")
        if isinstance(spec, dict):
            status = _int(spec.get("status", 502), "status")
            if not 500 <= status <= 599:
                raise web.HTTPBadRequest(text="status must be a 5xx code")
            server.fail_with(status, count_of(spec))
        spec = body.get("retry_after")
        if isinstance(spec, dict):
            server.force_retry_after(count_of(spec), _int(spec.get("seconds", 1), "seconds"))
        spec = body.get("drop")
        if isinstance(spec, dict):
            server.drop_connections(count_of(spec))
        if "latency" in body:
            try:
                server.set_latency(float(body["latency"]))
            except (TypeError, ValueError):
                raise web.HTTPBadRequest(text="latency must be a number") from None
        if "slow_answer" in body:
            try:
                server.slow_answers(float(body["slow_answer"]))
            except (TypeError, ValueError):
                raise web.HTTPBadRequest(text="slow_answer must be a number") from None
        return web.json_response(faults_json())

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(faults_json())

    app.router.add_get(f"{PREFIX}/personas", personas)
    app.router.add_post(f"{PREFIX}/users", create_user)
    app.router.add_post(f"{PREFIX}/users/{{user_id}}", update_user)
    app.router.add_post(f"{PREFIX}/send", send)
    app.router.add_post(f"{PREFIX}/upload", upload)
    app.router.add_post(f"{PREFIX}/press", press)
    app.router.add_get(f"{PREFIX}/messages", messages)
    app.router.add_get(f"{PREFIX}/stats", stats)
    app.router.add_get(f"{PREFIX}/faults", get_faults)
    app.router.add_post(f"{PREFIX}/faults", set_faults)
