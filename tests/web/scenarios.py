"""Browser scenarios shared by the single-node and the two-gateway (nginx) tests."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.web.browser import ChatPage, unique

NewUser = Callable[..., ChatPage]
ATTACHMENT = b"Parley attachment\nline two \xe2\x9c\x93\n"


def two_users_chat(new_user: NewUser, base_url: str) -> tuple[ChatPage, ChatPage, str]:
    """Two users register, log in, join a room and use every live feature both ways; the
    second user reloads (history comes back) and then leaves (the first sees them go
    offline). Returns the two pages and the room."""
    alice = new_user(base_url).register(unique("al"))
    bob = new_user(base_url).register(unique("bo"))
    room = unique("room-")
    alice.join(room)
    bob.join(room)
    alice.connected()
    bob.connected()

    # the CSP (connect-src 'self') lets the page upgrade to WebSocket, also through nginx
    for user in (alice, bob):
        user.on_websocket()

    # presence: each sees the other online
    expect(alice.online(bob.username)).to_be_visible()
    expect(bob.online(alice.username)).to_be_visible()

    # a message each way, with its ack status and typing on the way
    alice.send("hello from alice")
    bob.expect_texts(["hello from alice"])
    expect(alice.message("hello from alice").locator(".status")).to_have_text("Sent")

    bob.page.fill("#composer-text", "typing a reply")
    expect(alice.page.locator("#typing")).to_have_text(f"{bob.username} is typing…")
    # a reply to alice's message
    bob.message("hello from alice").get_by_role("button", name="Reply").click()
    expect(bob.page.locator("#reply-text")).to_contain_text("hello from alice")
    bob.page.fill("#composer-text", "hi alice, bob here")
    bob.page.press("#composer-text", "Enter")
    alice.expect_texts(["hello from alice", "hi alice, bob here"])
    expect(alice.page.locator("#typing")).to_have_text("")  # the message ends the typing
    reply = alice.message("hi alice, bob here")
    expect(reply.locator(".quote")).to_have_text(f"{alice.username}: hello from alice")

    # read receipts: both have the room open, so each has seen the other's message
    expect(alice.message("hello from alice").locator(".seen")).to_have_text(
        f"Seen by {bob.username}"
    )
    expect(bob.message("hi alice, bob here").locator(".seen")).to_have_text(
        f"Seen by {alice.username}"
    )

    # a file: alice uploads, bob downloads the same bytes
    alice.page.set_input_files(
        "#file-input", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": ATTACHMENT}]
    )
    download_button = bob.page.get_by_role("button", name=re.compile(r"^Download notes\.txt"))
    expect(download_button).to_be_visible()
    with bob.page.expect_download() as info:
        download_button.click()
    download = info.value
    assert download.suggested_filename == "notes.txt"
    with open(download.path(), "rb") as f:
        assert f.read() == ATTACHMENT

    # a direct message: alice picks bob in the online list; bob is notified and gets the room
    alice.online(bob.username).get_by_role("button").click()
    expect(alice.page.locator("#room-title")).to_have_text(f"@{bob.username}")
    alice.send("a private word")
    expect(
        bob.toasts().filter(has_text=f"New direct message from {alice.username}")
    ).to_be_visible()
    dm = bob.room_button(f"@{alice.username}")
    expect(dm.locator(".badge")).to_have_text("1")
    dm.click()
    bob.expect_texts(["a private word"])
    bob.room_button(f"#{room}").click()
    bob.expect_texts(["hello from alice", "hi alice, bob here"])  # (the file has no text)

    # a mention: bob is told even though he is in the room
    alice.room_button(f"#{room}").click()
    alice.send(f"@{bob.username} look at this")
    expect(
        bob.toasts().filter(has_text=f"{alice.username} mentioned you in #{room}")
    ).to_be_visible()

    # a reload keeps the session and the rooms, and history comes back
    expected = ["hello from alice", "hi alice, bob here", f"@{bob.username} look at this"]
    bob.expect_texts(expected)
    bob.page.reload()
    expect(bob.page.locator("#whoami-name")).to_have_text(f"Signed in as {bob.username}")
    expect(bob.page.locator("#room-title")).to_have_text(f"#{room}")
    bob.expect_texts(expected)
    expect(bob.page.locator(".attachment button")).to_have_count(1)
    expect(bob.room_button(f"@{alice.username}")).to_be_visible()

    # bob closes his browser: alice sees him go offline
    bob.context.close()
    expect(alice.online(bob.username)).to_have_count(0)
    expect(alice.toasts().filter(has_text=f"{bob.username} went offline")).to_be_visible()
    return alice, bob, room


def assert_no_duplicates(page: ChatPage) -> None:
    ids = page.ids()
    assert len(ids) == len(set(ids)), f"duplicate message ids on screen: {ids}"
    assert ids == sorted(ids), f"messages out of order: {ids}"
