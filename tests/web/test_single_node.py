"""The web client in a real Chromium against a single-node gateway (``make run``'s mode):
the two-user flow, a forced reconnect across a gateway restart, XSS, readable errors, the
narrow layout and accessible labels. Every test also asserts the browser console stayed
free of errors."""

from __future__ import annotations

import json
import re
import time

import httpx
from playwright.sync_api import expect

from services.common.auth import issue_token
from services.gateway.__main__ import banner
from tests.web.browser import NETWORK_DOWN, PASSWORD, unique
from tests.web.conftest import FILE_MAX_BYTES, HISTORY_PAGE
from tests.web.scenarios import assert_no_duplicates, two_users_chat


def test_make_run_prints_the_client_url_first(web_gateway):
    first = banner(web_gateway.settings).splitlines()[0]
    assert first.startswith(f"Web client: http://127.0.0.1:{web_gateway.settings.port}/")


def test_served_with_safe_headers(web_gateway):
    page = httpx.get(web_gateway.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    for path in ("/web/app.js", "/web/vendor/socket.io.esm.min.js"):
        asset = httpx.get(web_gateway.url + path)
        assert asset.status_code == 200, path
        assert "javascript" in asset.headers["content-type"], path
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(web_gateway.url + "/web/nothing-here.js").status_code == 404
    assert httpx.get(web_gateway.url + "/web/vendor/socket.io.js").status_code == 404  # only ESM
    assert httpx.get(web_gateway.url + "/web/config.json").json()["fileMaxBytes"] == FILE_MAX_BYTES


def test_two_users_chat(web_gateway, new_user):
    alice, bob, _ = two_users_chat(new_user, web_gateway.url)
    assert alice.errors() == [] and bob.errors() == []


def test_forced_reconnect_after_gateway_restart(web_gateway, new_user):
    alice = new_user(web_gateway.url).register(unique("al"))
    bob = new_user(web_gateway.url).register(unique("bo"))
    room = unique("restart-")
    alice.join(room)
    bob.join(room)
    alice.send("before the restart")
    bob.expect_texts(["before the restart"])

    # a graceful restart: SIGTERM drains (transports closed, no drain wait here) and the
    # process exits; the two-gateway test SIGKILLs instead
    web_gateway.stop()
    for user in (alice, bob):
        expect(user.page.locator("#banner")).to_have_text(
            re.compile("Connection lost|Cannot reach")
        )
        expect(user.page.locator("body")).to_have_attribute("data-connection", "offline")
    alice.send("written while the server was down")
    pending = alice.page.locator(".msg[data-cmid]")
    expect(pending.locator(".status")).to_have_text("Waiting for connection…")

    web_gateway.start()
    for user in (alice, bob):
        expect(user.page.locator("body")).to_have_attribute("data-connection", "online")
        expect(user.page.locator("body")).to_have_attribute("data-reconnects", re.compile("[1-9]"))
    expected = ["before the restart", "written while the server was down"]
    bob.expect_texts(expected)
    alice.expect_texts(expected)
    expect(pending).to_have_count(0)
    expect(alice.message("written while the server was down").locator(".status")).to_have_text(
        "Sent"
    )
    bob.send("after the restart")
    alice.expect_texts([*expected, "after the restart"])
    bob.expect_texts([*expected, "after the restart"])
    expect(alice.page.locator("#banner")).to_be_hidden()  # "Reconnected." goes away
    for user in (alice, bob):
        assert_no_duplicates(user)
        # only Chromium's own "connection refused" lines while the server was down
        assert user.errors(allow=NETWORK_DOWN) == []


def test_history_pages_and_reload(web_gateway, new_user):
    user = new_user(web_gateway.url).register(unique("hi"))
    user.join(unique("long-"))
    texts = [f"line {i}" for i in range(HISTORY_PAGE + 2)]
    for text in texts:
        user.send(text)
    user.expect_texts(texts)
    user.page.reload()
    user.expect_texts(texts[-HISTORY_PAGE:])  # the newest page comes back with the room
    user.page.get_by_role("button", name="Load older messages").click()
    user.expect_texts(texts)
    expect(user.page.locator("#history-start")).to_have_text("Start of the conversation")
    expect(user.page.locator("#load-older")).to_be_hidden()
    assert_no_duplicates(user)
    user.page.get_by_role("button", name="Leave").click()
    expect(user.page.locator("#room-list li")).to_have_count(0)
    expect(user.page.locator("#room-title")).to_have_text("No room yet")
    user.page.reload()  # the room stays left
    expect(user.page.locator("#whoami-name")).to_have_text(f"Signed in as {user.username}")
    expect(user.page.locator("#room-list li")).to_have_count(0)
    assert user.errors() == []


XSS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    "<a href=javascript:alert(4)>click</a>",
]


def test_user_text_is_never_html(web_gateway, new_user):
    alice = new_user(web_gateway.url).register(unique("al"))
    bob = new_user(web_gateway.url).register(unique("bo"))
    room = unique("x<img src=x onerror=alert(5)>")
    alice.join(room)
    bob.join(room)
    for text in XSS:
        alice.send(text)
    alice.page.set_input_files(
        "#file-input",
        files=[
            {"name": "<img src=x onerror=alert(6)>.txt", "mimeType": "text/plain", "buffer": b"x"}
        ],
    )
    bob.expect_texts(XSS)
    expect(bob.page.locator(".attachment button")).to_have_text(
        "Download <img src=x onerror=alert(6)>.txt (1 B)"
    )
    for user in (alice, bob):
        expect(user.page.locator("#room-title")).to_have_text(f"#{room}")
        assert user.page.locator("#messages img, #messages svg, #messages script").count() == 0
        assert user.page.locator("#room-list img, #messages a").count() == 0
        assert user.dialogs == []
        assert user.errors() == []


def test_bad_password_is_explained(web_gateway, new_user):
    user = new_user(web_gateway.url).register(unique("pw"))
    user.page.click("#logout")
    user.login(user.username, "not the password")
    expect(user.page.locator("#auth-error")).to_have_text("Invalid username or password")
    user.login(user.username, PASSWORD)
    expect(user.page.locator("#whoami-name")).to_have_text(f"Signed in as {user.username}")
    # Chromium logs the 401 response itself; nothing else may appear
    assert user.errors(allow=re.compile(r"status of 401")) == []
    assert len(user.errors()) == 1


def test_expired_token_sends_back_to_login(web_gateway, new_user):
    user = new_user(web_gateway.url)
    expired = issue_token(
        web_gateway.settings, "u-expired", "expired", ttl_seconds=600, now=time.time() - 7200
    )
    # the page believes the token is still good (expiresAt ahead): the server must say no
    session = {
        "token": expired,
        "userId": "u-expired",
        "username": "expired",
        "expiresAt": "2999-01-01T00:00:00.000Z",
    }
    user.page.evaluate("s => sessionStorage.setItem('parley.session', s)", json.dumps(session))
    user.page.reload()
    expect(user.page.locator("#auth-error")).to_have_text(
        "Your session has expired. Please log in again."
    )
    expect(user.page.locator("#login-form")).to_be_visible()
    assert user.page.evaluate("sessionStorage.getItem('parley.session')") is None
    assert user.errors() == []


def test_file_errors_are_explained(web_gateway, new_user):
    user = new_user(web_gateway.url).register(unique("fi"))
    user.join(unique("files-"))
    user.page.set_input_files(
        "#file-input",
        files=[
            {
                "name": "big.bin",
                "mimeType": "application/octet-stream",
                "buffer": b"\0" * (FILE_MAX_BYTES + 1),
            }
        ],
    )
    expect(user.page.locator("#composer-error")).to_have_text(
        "File too large: big.bin is 64.0 KiB; the limit is 64.0 KiB."
    )
    user.page.set_input_files(
        "#file-input",
        files=[{"name": "tool.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ"}],
    )
    expect(user.page.locator("#composer-error")).to_have_text(
        "Files of type application/x-msdownload are not allowed."
    )
    expect(user.page.locator(".attachment")).to_have_count(0)
    assert user.errors() == []


def test_rate_limit_keeps_the_message_for_a_retry(web_gateway, new_user):
    user = new_user(web_gateway.url).register(unique("rl"))
    user.join(unique("fast-"))
    user.on_websocket()  # so every attempt is a frame the test can read
    texts = [f"quick message {i}" for i in range(9)]  # the limit is 8 per 4 s
    for text in texts:
        user.send(text)
    failed = user.page.locator(".msg[data-cmid].error")
    expect(failed).to_have_count(1)
    expect(failed.locator(".text")).to_have_text("quick message 8")
    expect(failed.locator(".msg-error")).to_contain_text("Rate limit exceeded")
    user.expect_texts(texts[:8])
    time.sleep(4.5)  # let the sliding window pass
    failed.get_by_role("button", name="Retry").click()
    user.expect_texts(texts)
    expect(user.page.locator(".msg[data-cmid]")).to_have_count(0)
    attempts = user.sent_messages("quick message 8")
    assert len(attempts) == 2, attempts  # refused, then the retry
    assert attempts[0]["clientMsgId"] == attempts[1]["clientMsgId"]  # the same clientMsgId
    assert_no_duplicates(user)
    assert user.errors() == []


def test_narrow_screen_and_labels(web_gateway, new_user):
    user = new_user(web_gateway.url, viewport={"width": 360, "height": 740})
    unlabeled = user.page.eval_on_selector_all(
        "input, textarea", "els => els.filter(e => !e.labels || !e.labels.length).map(e => e.id)"
    )
    assert unlabeled == []
    user.register(unique("nw"))
    toggle = user.page.locator("#toggle-sidebar")
    expect(toggle).to_be_visible()
    expect(user.page.locator("#sidebar")).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    user.join(unique("small-"))
    expect(user.page.locator("#sidebar")).to_be_hidden()  # closes once a room is chosen
    user.send("fits on a phone")
    user.expect_texts(["fits on a phone"])
    width = user.page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 360, f"horizontal overflow: {width}px"
    assert user.errors() == []
