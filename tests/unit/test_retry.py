"""services/common/retry.py: the one backoff policy."""

from services.common.retry import Backoff


def test_backoff_doubles_to_the_cap_with_jitter_in_the_upper_half_and_resets():
    low = Backoff(0.2, 1.0, rng=lambda: 0.0)
    assert [low.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    high = Backoff(0.2, 1.0, rng=lambda: 1.0)
    assert [high.next() for _ in range(4)] == [0.2, 0.4, 0.8, 1.0]
    high.reset()
    assert high.next() == 0.2 and high.attempts == 1
