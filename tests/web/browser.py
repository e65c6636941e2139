"""Driving the web client in a real Chromium: one ``ChatPage`` per user (its own browser
context, so its own sessionStorage), with the browser console collected for assertions."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field

from playwright.sync_api import BrowserContext, Locator, Page, expect

PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; the rest keeps it off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
]
# What Chromium itself logs while a server is down (connection refused), allowed only in the
# tests that take a server down on purpose.
NETWORK_DOWN = re.compile(
    r"ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|"
    r"WebSocket connection to .* failed|status of 502"
)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class ConsoleEntry:
    kind: str
    text: str
    at: float


@dataclass
class ChatPage:
    context: BrowserContext
    page: Page
    base_url: str
    console: list[ConsoleEntry] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    frames_sent: list[str] = field(default_factory=list)  # WebSocket frames the page sent
    username: str = ""

    @classmethod
    def open(cls, context: BrowserContext, base_url: str) -> ChatPage:
        page = context.new_page()
        chat = cls(context, page, base_url.rstrip("/"))
        page.on("console", chat._on_console)
        page.on("pageerror", lambda exc: chat._record("pageerror", str(exc)))
        page.on("dialog", chat._on_dialog)
        page.on("websocket", lambda ws: ws.on("framesent", chat._on_frame))
        page.goto(chat.base_url + "/")
        return chat

    def _on_console(self, message) -> None:
        if message.type in ("error", "warning", "assert"):
            self._record(message.type, message.text)

    def _record(self, kind: str, text: str) -> None:
        self.console.append(ConsoleEntry(kind, text, time.monotonic()))

    def _on_frame(self, payload) -> None:
        if isinstance(payload, str):
            self.frames_sent.append(payload)

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def errors(self, allow: re.Pattern[str] | None = None) -> list[str]:
        return [
            f"{e.kind}: {e.text}"
            for e in self.console
            if e.kind != "warning" and not (allow is not None and allow.search(e.text))
        ]

    # --- auth -----------------------------------------------------------------------------

    def register(self, username: str, password: str = PASSWORD) -> ChatPage:
        self.page.fill("#register-username", username)
        self.page.fill("#register-password", password)
        self.page.click("#register-form button[type=submit]")
        expect(self.page.locator("#whoami-name")).to_have_text(f"Signed in as {username}")
        self.username = username
        return self

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.page.fill("#login-username", username)
        self.page.fill("#login-password", password)
        self.page.click("#login-form button[type=submit]")

    def connected(self) -> None:
        expect(self.page.locator("body")).to_have_attribute("data-connection", "online")

    def on_websocket(self, timeout: float = 15) -> None:
        """Wait for the Engine.IO upgrade. Polled with ``evaluate`` (CDP): ``wait_for_function``
        would evaluate a string in the page, which the page's CSP refuses (no unsafe-eval)."""
        deadline = time.monotonic() + timeout
        script = "() => window.__parley?.chat?.io?.engine?.transport?.name"
        while (transport := self.page.evaluate(script)) != "websocket":
            assert time.monotonic() < deadline, f"still on {transport} after {timeout}s"
            time.sleep(0.1)

    def sent_messages(self, text: str) -> list[dict]:
        """The ``chat:message`` payloads with this text the page sent over its WebSocket."""
        out = []
        for frame in self.frames_sent:
            start = frame.find("[")
            if not frame.startswith("42/chat,") or start < 0:
                continue
            event = json.loads(frame[start:])
            if event[0] == "chat:message" and event[1].get("text") == text:
                out.append(event[1])
        return out

    # --- rooms and messages -----------------------------------------------------------------

    def join(self, room: str) -> None:
        self.page.fill("#join-room", room)
        self.page.press("#join-room", "Enter")
        expect(self.page.locator("#room-title")).to_have_text(f"#{room}")
        expect(self.page.locator("#composer")).to_be_visible()

    def send(self, text: str) -> None:
        self.page.fill("#composer-text", text)
        self.page.press("#composer-text", "Enter")

    def message(self, text: str) -> Locator:
        """The confirmed message(s) whose text is exactly ``text``."""
        return self.page.locator(".msg[data-id]").filter(
            has=self.page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$"))
        )

    def texts(self) -> list[str]:
        """The texts of the confirmed messages of the open room, in order."""
        return self.page.locator(".msg[data-id] .text").all_inner_texts()

    def ids(self) -> list[str]:
        return self.page.eval_on_selector_all(".msg[data-id]", "els => els.map(e => e.dataset.id)")

    def expect_texts(self, texts: list[str], timeout: float = 15_000) -> None:
        expect(self.page.locator(".msg[data-id] .text")).to_have_text(texts, timeout=timeout)

    def online(self, username: str) -> Locator:
        return self.page.locator(f'#online-list li[data-user="{username}"]')

    def toasts(self) -> Locator:
        return self.page.locator("#toasts .toast")

    def room_button(self, label: str) -> Locator:
        return self.page.locator("#room-list .room-button", has_text=label)
