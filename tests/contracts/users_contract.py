"""One contract for every ``UserStore`` adapter; subclasses provide the ``users`` fixture.

Usernames are unique per test (random suffix) so the suite can share one database.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.storage.users import User, UsernameTaken, new_user_id


def name(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def make_user(username: str, password_hash: str = "bcrypt-sha256$x") -> User:
    return User(new_user_id(), username, password_hash, created_ms=1_795_000_000_123)


class UserStoreContract:
    async def test_created_user_is_found_by_name_in_any_case_and_by_id(self, users):
        user = make_user(name("Alice"))
        await users.create(user)
        for spelling in (user.username, user.username.lower(), user.username.upper()):
            found = await users.by_username(spelling)
            assert found == user  # every field, the registered spelling included
        assert await users.by_id(user.user_id) == user

    async def test_a_taken_name_is_refused_in_any_case(self, users):
        first = make_user(name("Bob"))
        await users.create(first)
        with pytest.raises(UsernameTaken):
            await users.create(make_user(first.username))
        with pytest.raises(UsernameTaken):
            await users.create(make_user(first.username.swapcase()))
        assert await users.by_username(first.username) == first  # the first one stays

    async def test_concurrent_creates_of_one_name_have_exactly_one_winner(self, users):
        username = name("race")
        attempts = [make_user(username, f"bcrypt-sha256${i}") for i in range(6)]
        results = await asyncio.gather(*(users.create(u) for u in attempts), return_exceptions=True)
        winners = [u for u, r in zip(attempts, results, strict=True) if r is None]
        assert len(winners) == 1
        assert all(isinstance(r, UsernameTaken) for r in results if r is not None)
        assert await users.by_username(username) == winners[0]
        losers = [u for u in attempts if u is not winners[0]]
        for loser in losers:
            assert await users.by_id(loser.user_id) is None

    async def test_unknown_names_and_ids_are_none(self, users):
        assert await users.by_username(name("nobody")) is None
        assert await users.by_id(new_user_id()) is None
        assert await users.healthy()

    async def test_distinct_names_coexist(self, users):
        a, b = make_user(name("a")), make_user(name("b"))
        await users.create(a)
        await users.create(b)
        assert (await users.by_username(a.username)).user_id == a.user_id
        assert (await users.by_username(b.username)).user_id == b.user_id
