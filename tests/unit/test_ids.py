from services.common.ids import ID_LENGTH, IdGenerator, is_valid_id, lowest_id_at, timestamp_ms


def test_ids_are_strings_that_sort_in_creation_order():
    gen = IdGenerator()
    ids = [gen.new_id()[0] for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == ID_LENGTH and is_valid_id(i) for i in ids)


def test_id_carries_its_millisecond():
    gen = IdGenerator(clock=lambda: 1_795_000_000.123)
    message_id, ms = gen.new_id()
    assert ms == 1_795_000_000_123
    assert timestamp_ms(message_id) == ms
    assert lowest_id_at(ms) <= message_id


def test_clock_stepping_back_never_breaks_order():
    now = [1_000_000.0]
    gen = IdGenerator(clock=lambda: now[0])
    first, _ = gen.new_id()
    now[0] -= 5  # NTP step backwards
    second, ms = gen.new_id()
    assert second > first
    assert ms == 1_000_000_000


def test_two_generators_never_collide_and_later_ms_sorts_later():
    a, b = IdGenerator(node=1), IdGenerator(node=2)
    ids = {a.new_id()[0] for _ in range(1000)} | {b.new_id()[0] for _ in range(1000)}
    assert len(ids) == 2000
    early = IdGenerator(node=0xFFFFFFFF, clock=lambda: 10.0).new_id()[0]
    late = IdGenerator(node=0, clock=lambda: 10.001).new_id()[0]
    assert late > early


def test_is_valid_id_rejects_garbage():
    for bad in (
        None,
        12,
        "",
        "x" * 26,
        "01M8C8TS61WE8TMRR084RDEN5",
        "81M8C8TS61WE8TMRR084RDEN5D",
        "01m8c8ts61we8tmrr084rden5d",
    ):
        assert not is_valid_id(bad)
