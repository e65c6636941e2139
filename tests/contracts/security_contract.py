"""Contracts of the token denylist and of the limiter's peek/reset, run on the memory
adapters (unit) and on real Redis (integration)."""

import time
import uuid

from services.common.limits import Limit


class RevocationsContract:
    async def test_revoked_until_expiry(self, revocations):
        live, gone = uuid.uuid4().hex, uuid.uuid4().hex
        await revocations.add(live, int(time.time()) + 60)
        await revocations.add(gone, int(time.time()) - 3600)  # long expired: nothing to deny
        assert await revocations.revoked(live)
        assert not await revocations.revoked(gone)
        assert not await revocations.revoked(uuid.uuid4().hex)


class LimiterPeekContract:
    async def test_full_peeks_without_counting_and_reset_forgets(self, limiter):
        key, limit = f"peek:{uuid.uuid4().hex}", Limit(2, 1000)
        assert not await limiter.full(key, limit, 0)
        assert await limiter.hit(key, limit, 0) and await limiter.hit(key, limit, 10)
        assert await limiter.full(key, limit, 20) and await limiter.full(key, limit, 30)
        assert not await limiter.hit(key, limit, 40)
        assert not await limiter.full(key, limit, 1011)  # both hits slid out
        assert await limiter.hit(key, limit, 1012) and await limiter.hit(key, limit, 1013)
        await limiter.reset(key)
        assert not await limiter.full(key, limit, 1014)
