"""Fixtures of the web client's browser tests: Debian's Chromium driven by Playwright
(``executable_path``; Playwright's own browser download is not used), a single-node gateway
of our own (``PARLEY_MODE=single``), and a factory of ``ChatPage`` users that closes them all
at the end.

The single-node gateway listens on ``PARLEY_WEB_TEST_PORT`` (default: a free port) and is
tuned so the tests stay short: bcrypt cost 4, a 64 KiB file cap, history pages of 5,
``chat:message`` limited to 8 per 4 s (the rate-limit test retries after the window), a 1 s
presence grace, and
registration/login limits high enough for a test run from one IP.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from services.common.settings import Settings
from tests.support.procs import LOG_DIR, Service, free_port
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, ChatPage

HERE = Path(__file__).resolve().parent
EVIDENCE = LOG_DIR / "web"
FILE_MAX_BYTES = 64 * 1024
HISTORY_PAGE = 5  # messages per history page (room:join and "load older")
MESSAGE_LIMIT = (
    "chat:message=8/4,chat:typing=5/1,chat:read=60/10,chat:file=10/60,"
    "room:join=60/10,chat:history=30/10"
)

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        result = subprocess.run(
            ["bash", str(HERE / "install_chromium.sh")], capture_output=True, text=True
        )
        if result.returncode != 0:
            pytest.fail(f"could not install chromium:\n{result.stdout}\n{result.stderr}")
    return CHROMIUM


# Module scope, not session: Playwright's sync API keeps an event loop running while it is
# open, and the asyncio tests that run after this layer (tests/faults) must not find one.
@pytest.fixture(scope="module")
def browser(chromium_path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.web_failed = report.failed
    return report


@pytest.fixture
def new_user(browser, request) -> Iterator[Callable[..., ChatPage]]:
    """``new_user(base_url)``: a fresh browser context (its own sessionStorage) on the page.
    When the test fails, each page's screenshot, console and client state are saved under
    ``.run/test-logs/web/``."""
    contexts, pages = [], []

    def make(base_url: str, **context_options) -> ChatPage:
        context = browser.new_context(**context_options)
        contexts.append(context)
        pages.append(ChatPage.open(context, base_url))
        return pages[-1]

    yield make
    if getattr(request.node, "web_failed", False):
        save_evidence(request.node.name, pages)
    for context in contexts:
        with contextlib.suppress(Exception):  # closed by the test already (a user left)
            context.close()


def save_evidence(test: str, pages: list[ChatPage]) -> None:
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    for n, chat in enumerate(pages):
        stem = EVIDENCE / f"{test}-{n}-{chat.username or 'anonymous'}"
        with contextlib.suppress(Exception):  # a closed page has nothing to show
            chat.page.screenshot(path=f"{stem}.png", full_page=True)
        state = ""
        with contextlib.suppress(Exception):
            state = chat.page.evaluate(STATE_JS)
        lines = [f"{e.at:.3f} {e.kind}: {e.text}" for e in chat.console]
        stem.with_suffix(".txt").write_text("\n".join([*lines, "--- client state", str(state)]))


STATE_JS = """() => { const a = window.__parley; if (!a) return "no client";
  return JSON.stringify({connected: a.chat && a.chat.connected, banners: a.banners,
    active: a.active, pending: [...a.pending.values()],
    rooms: [...a.rooms.values()].map(r => ({id: r.roomId, joined: r.joined, ids: r.ids}))}); }"""


class WebGateway:
    """A single-node gateway process we may restart (same port, same SQLite file)."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.settings = Settings.from_env({**os.environ, **env, "PARLEY_PORT": str(port)})
        self.service: Service | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebGateway:
        self.service = Service("gateway", "web-single", self.env, port=self.port)
        try:
            self.service.start().wait_ready()
        except BaseException:
            self.service.stop()  # never leave a half-started process behind
            raise
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


@pytest.fixture(scope="session")
def web_gateway(tmp_path_factory) -> Iterator[WebGateway]:
    folder = tmp_path_factory.mktemp("web-single")
    # The three SQLite stores of a fresh database race to switch it to WAL, which does not
    # wait for the lock ("database is locked"), and the start retry then finds its executor
    # shut down (reported to the lead). A database already in WAL mode avoids the race.
    with contextlib.closing(sqlite3.connect(folder / "parley.db")) as db:
        db.execute("PRAGMA journal_mode=WAL")
    port = int(os.environ.get("PARLEY_WEB_TEST_PORT", "0")) or free_port()
    env = {
        "PARLEY_MODE": "single",
        "PARLEY_SQLITE_PATH": str(folder / "parley.db"),
        "PARLEY_JWT_SECRET": secrets.token_urlsafe(48),
        "PARLEY_PASSWORD_BCRYPT_ROUNDS": "4",
        "PARLEY_FILE_MAX_BYTES": str(FILE_MAX_BYTES),
        "PARLEY_RATE_LIMITS": MESSAGE_LIMIT,
        "PARLEY_LOGIN_IP_RATE_LIMIT": "1000/60",
        "PARLEY_REGISTER_IP_RATE_LIMIT": "1000/3600",
        "PARLEY_REGISTER_RATE_LIMIT": "1000/60",
        "PARLEY_HISTORY_DEFAULT_LIMIT": str(HISTORY_PAGE),
        "PARLEY_PRESENCE_GRACE_SECONDS": "1",
        "PARLEY_PRESENCE_SWEEP_SECONDS": "0.5",
        "PARLEY_DRAIN_SECONDS": "0",  # the restart test kills it; the end needs no drain
        "PARLEY_DRAIN_DISCONNECT_SECONDS": "0",
        "PARLEY_LOG_LEVEL": "info",
    }
    gateway = WebGateway(env, port).start()
    yield gateway
    gateway.stop()
