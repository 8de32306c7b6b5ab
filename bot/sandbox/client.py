"""An HTTP client for the sandbox's test API, for tools running outside the server's process."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp


class SandboxClient:
    """Acts as sandbox users over `/sandbox/api/` (the same calls the web page makes)."""

    def __init__(self, web_url: str) -> None:
        self.api = web_url.rstrip("/") + "/sandbox/api"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.request(method, self.api + path, **kwargs) as response:
            response.raise_for_status()
            return await response.json()

    async def personas(self) -> dict[str, int]:
        data = await self._call("GET", "/personas")
        return {p["name"]: int(p["id"]) for p in data["personas"]}

    async def create_user(self, first_name: str = "Test", language_code: str | None = "uk") -> int:
        data = await self._call(
            "POST", "/users", json={"first_name": first_name, "language_code": language_code}
        )
        return int(data["id"])

    async def set_language(self, user_id: int, language_code: str | None) -> None:
        await self._call("POST", f"/users/{user_id}", json={"language_code": language_code})

    async def send_text(
        self, user_id: int, text: str, chat_id: int | None = None, *, reply_to: int | None = None
    ) -> int:
        body = {"user_id": user_id, "text": text, "chat_id": chat_id, "reply_to": reply_to}
        return int((await self._call("POST", "/send", json=body))["message_id"])

    async def press(
        self, user_id: int, message_id: int, data: str, chat_id: int | None = None
    ) -> str:
        body = {"user_id": user_id, "message_id": message_id, "data": data, "chat_id": chat_id}
        return str((await self._call("POST", "/press", json=body))["callback_query_id"])

    async def messages(self, chat_id: int, since: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """Messages of the chat changed after `since` (a `seq`), long-polling up to `wait` s."""
        params = {"chat_id": str(chat_id), "since": str(since), "wait": str(wait)}
        result: dict[str, Any] = await self._call("GET", "/messages", params=params)
        return result

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/stats")
        return result

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        """e.g. `set_faults(server_error={"status": 502})`, then `set_faults(heal=True)`."""
        result: dict[str, Any] = await self._call("POST", "/faults", json=faults)
        return result
