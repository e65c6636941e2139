"""The WebSocket frame a room emit writes straight to transports (gateway/wsdirect.py) is the
frame the websockets library itself would send, at every length encoding."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from services.gateway.wsdirect import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_is_what_websockets_sends(size: int) -> None:
    payload = "é" * (size // 2) + "x" * (size % 2)  # ``size`` bytes of UTF-8
    assert len(payload.encode()) == size
    expected = Frame(Opcode.TEXT, payload.encode()).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


def test_text_frame_parses_back() -> None:
    payload = '42/chat,["chat:message",{"text":"héllo"}]'
    frame = text_frame(payload)
    assert frame[0] == 0x81  # FIN, text, no RSV bits (never compressed)
    assert frame[1] & 0x80 == 0  # a server's frames are never masked
    assert frame[2:].decode() == payload
