"""The client side of the sandbox: users and groups, and what users do in them (send text and
attachments, reply, edit, press buttons). `SandboxServer` mixes this in; tests call it directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from bot.sandbox import inject
from bot.sandbox.media import TINY_PNG, placeholder
from bot.sandbox.sending import reply_copy
from bot.sandbox.state import (
    BotMessage,
    CallbackQuery,
    SandboxChat,
    SandboxUser,
    UserMessage,
    World,
)

Builder = Callable[[SandboxUser, SandboxChat, int], dict[str, Any]]


class UserSide:
    """Users, chats and what users do; every send returns the new message's id."""

    world: World
    _new_user_ids: Iterator[int]

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

    def _replied(self, chat: SandboxChat, message_id: int) -> dict[str, Any]:
        """The message a user replies to, as `reply_to_message` carries it."""
        bot_message = self.world.find_bot_message(chat.id, message_id)
        if bot_message is not None and not bot_message.deleted:
            return bot_message.to_api()
        user_message = self.world.find_user_message(chat.id, message_id)
        if user_message is not None:
            return reply_copy(user_message.raw)
        raise KeyError(f"no message {message_id} in chat {chat.id} to reply to")

    def _post_message(
        self, user_id: int, chat_id: int | None, build: Builder, reply_to: int | None = None
    ) -> int:
        user = self.user(user_id)
        chat = self._chat(user_id, chat_id)
        replied = None if reply_to is None else self._replied(chat, reply_to)
        message_id = self.world.next_message_id(chat.id)
        message = build(user, chat, message_id)
        if replied is not None:
            message["reply_to_message"] = replied
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

    async def send_file(
        self,
        user_id: int,
        kind: str,
        *,
        content: bytes | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        duration: int | None = None,
    ) -> int:
        """The user sends a file of `kind` ("photo", "document", "voice", ...); its new file id is
        registered, so getFile, downloads and re-sending it work."""
        default_data, default_name = placeholder(kind)
        data = default_data if content is None else content
        name = file_name or default_name
        file_id, unique = self.world.add_file(kind, data, name)
        attachment = inject.file_object(
            kind,
            file_id,
            unique,
            len(data),
            file_name=name,
            mime_type=mime_type,
            duration=duration,
        )

        def build(user: SandboxUser, chat: SandboxChat, message_id: int) -> dict[str, Any]:
            return inject.media_message(user, chat, message_id, kind, attachment, caption)

        return self._post_message(user_id, chat_id, build, reply_to)

    async def send_text(
        self, user_id: int, text: str, chat_id: int | None = None, *, reply_to: int | None = None
    ) -> int:
        """The user sends `text` (in their private chat, or `chat_id`); returns its message id.

        `reply_to` makes it a reply to that message of the chat (the bot's or a user's).
        """
        return self._post_message(
            user_id, chat_id, lambda u, c, m: inject.text_message(u, c, m, text), reply_to
        )

    async def send_photo(
        self,
        user_id: int,
        caption: str | None = None,
        chat_id: int | None = None,
        *,
        reply_to: int | None = None,
        content: bytes | None = None,
    ) -> int:
        return await self.send_file(
            user_id,
            "photo",
            content=TINY_PNG if content is None else content,
            caption=caption,
            chat_id=chat_id,
            reply_to=reply_to,
        )

    async def send_document(
        self,
        user_id: int,
        file_name: str = "document.pdf",
        content: bytes = b"%PDF-1.4 sandbox",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        chat_id: int | None = None,
        *,
        reply_to: int | None = None,
    ) -> int:
        return await self.send_file(
            user_id,
            "document",
            content=content,
            file_name=file_name,
            mime_type=mime_type,
            caption=caption,
            chat_id=chat_id,
            reply_to=reply_to,
        )

    async def send_sticker(
        self, user_id: int, chat_id: int | None = None, *, reply_to: int | None = None
    ) -> int:
        """A message kind the bot probably does not handle, for robustness tests."""
        return await self.send_file(user_id, "sticker", chat_id=chat_id, reply_to=reply_to)

    async def send_voice(
        self,
        user_id: int,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
        content: bytes | None = None,
        duration: int = 3,
    ) -> int:
        return await self.send_file(
            user_id,
            "voice",
            content=content,
            caption=caption,
            chat_id=chat_id,
            reply_to=reply_to,
            duration=duration,
        )

    async def send_video(
        self,
        user_id: int,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
    ) -> int:
        return await self.send_file(
            user_id, "video", caption=caption, chat_id=chat_id, reply_to=reply_to, duration=5
        )

    async def send_audio(
        self,
        user_id: int,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
    ) -> int:
        return await self.send_file(
            user_id, "audio", caption=caption, chat_id=chat_id, reply_to=reply_to, duration=30
        )

    async def send_animation(
        self,
        user_id: int,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        reply_to: int | None = None,
    ) -> int:
        return await self.send_file(
            user_id, "animation", caption=caption, chat_id=chat_id, reply_to=reply_to
        )

    async def send_video_note(
        self, user_id: int, *, chat_id: int | None = None, reply_to: int | None = None
    ) -> int:
        return await self.send_file(user_id, "video_note", chat_id=chat_id, reply_to=reply_to)

    async def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
        reply_to: int | None = None,
    ) -> int:
        def build(user: SandboxUser, chat: SandboxChat, message_id: int) -> dict[str, Any]:
            location = {"latitude": latitude, "longitude": longitude}
            return {**inject.base_message(user, chat, message_id), "location": location}

        return self._post_message(user_id, chat_id, build, reply_to)

    async def send_contact(
        self,
        user_id: int,
        phone_number: str,
        first_name: str,
        *,
        chat_id: int | None = None,
        reply_to: int | None = None,
        last_name: str | None = None,
        contact_user_id: int | None = None,
    ) -> int:
        """A shared contact; `contact_user_id` as when users share their own number."""
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id

        def build(user: SandboxUser, chat: SandboxChat, message_id: int) -> dict[str, Any]:
            return {**inject.base_message(user, chat, message_id), "contact": contact}

        return self._post_message(user_id, chat_id, build, reply_to)

    async def edit_text(
        self, user_id: int, message_id: int, text: str, chat_id: int | None = None
    ) -> None:
        """The user edits one of their messages: an `edited_message` update."""
        user = self.user(user_id)
        chat = self._chat(user_id, chat_id)
        message = inject.text_message(user, chat, message_id, text)
        message["edit_date"] = int(time.time())
        stored = self.world.find_user_message(chat.id, message_id)
        if stored is not None:
            stored.text = text
            kept = {k: v for k, v in stored.raw.items() if k != "entities"}
            stored.raw = {**kept, **message, "date": kept["date"]}
            stored.edited = True
            stored.seq = self.world.next_seq()
        self.world.push_update({"edited_message": message})

    async def press(
        self,
        user_id: int,
        message_id: int,
        data: str,
        chat_id: int | None = None,
        *,
        too_old: bool = False,
    ) -> str:
        """The user taps an inline button; any `data` is delivered (tests forge callbacks).

        A deleted (or unknown) message comes as Telegram's InaccessibleMessage (date 0, no
        content); so does one `too_old` (Telegram leaves out the content and date of an old
        message), though it still exists in the chat."""
        user = self.user(user_id)
        chat = self._chat(user_id, chat_id)
        pressed = self.world.find_bot_message(chat.id, message_id)
        if pressed is not None and not pressed.deleted and not too_old:
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
