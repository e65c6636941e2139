import asyncio

from services.gateway.batching import Batcher


async def test_quiet_room_gets_singles_at_once_busy_room_gets_batches():
    sent: list[tuple[str, object, str]] = []

    async def emit(event, data, room):
        sent.append((event, data, room))

    b = Batcher(emit, window_s=0.05)
    await b.add("r", 1)
    assert sent == [("chat:message", 1, "r#batch")]  # no added latency
    for n in (2, 3, 4):
        await b.add("r", n)
    assert len(sent) == 1
    await asyncio.sleep(0.08)
    assert sent[1] == ("chat:batch", [2, 3, 4], "r#batch")
    await b.add("r", 5)  # window still open: held, then sent alone as a plain message
    await asyncio.sleep(0.2)
    assert sent[2] == ("chat:message", 5, "r#batch")
    await b.add("r", 6)  # window closed: at once again
    assert sent[3] == ("chat:message", 6, "r#batch")
    await b.add("other", 7)
    assert sent[4] == ("chat:message", 7, "other#batch")
    await b.close()
    delivered = [d for e, d, _ in sent if e == "chat:message"]
    delivered += [x for e, d, _ in sent if e == "chat:batch" for x in d]
    assert sorted(delivered) == [1, 2, 3, 4, 5, 6, 7]
