"""The memory adapters of the token denylist and of the limiter's peek/reset."""

import pytest

from services.storage.ratelimit import MemoryRateLimiter
from services.storage.revocations import MemoryRevocations
from tests.contracts.security_contract import LimiterPeekContract, RevocationsContract


class TestMemoryRevocations(RevocationsContract):
    @pytest.fixture
    def revocations(self):
        return MemoryRevocations()


class TestMemoryLimiterPeek(LimiterPeekContract):
    @pytest.fixture
    def limiter(self):
        return MemoryRateLimiter()
