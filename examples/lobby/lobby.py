"""The game lobby: a small backend that fills games from a lobby room through the Server API.

It watches the lobby's members (``GET /rooms/{lobby}/members``); whenever ``--size`` players
are in it, it creates a game room, moves the players in (``PUT /rooms/{game}/members/{user}``,
every socket of each player on whichever gateway holds it), takes them out of the lobby, and
announces the match with an ``app:match`` event in the game room.

    PYTHONPATH=. python examples/lobby/lobby.py --url http://127.0.0.1:8000 \\
        --key "$LOBBY_KEY" --lobby lobby --size 4

The key needs the ``read``, ``rooms`` and ``publish`` scopes. ``--games N`` stops after N
matches (the tests use it). Players are matched oldest member first (by user id order here:
the API lists members by id; a real matchmaker would keep its own queue).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import uuid

from parley_client import ApiError, ParleyApi

log = logging.getLogger("lobby")


async def make_match(api: ParleyApi, lobby: str, players: list[str]) -> str:
    game = f"game-{uuid.uuid4().hex[:8]}"
    for player in players:
        await api.join(game, player)
        await api.leave(lobby, player)
    await api.event(game, "app:match", {"game": game, "players": players, "lobby": lobby})
    await api.publish(game, f"Match found: {len(players)} players. Good luck!")
    log.info("match %s: %s", game, ", ".join(players))
    return game


async def run(api: ParleyApi, lobby: str, size: int, games: int | None, poll_s: float) -> None:
    made = 0
    while games is None or made < games:
        try:
            waiting = sorted(m.user_id for m in await api.members(lobby) if m.online)
            if len(waiting) >= size:
                await make_match(api, lobby, waiting[:size])
                made += 1
                continue
        except ApiError as exc:  # 503/429: wait and look again
            log.warning("lobby: %s", exc)
            await asyncio.sleep(exc.retry_after or poll_s)
        await asyncio.sleep(poll_s)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("PARLEY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("LOBBY_KEY", ""))
    parser.add_argument("--lobby", default="lobby")
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--games", type=int, default=None)
    parser.add_argument("--poll", type=float, default=0.3)
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(message)s")
    async with ParleyApi(args.url, args.key) as api:
        await run(api, args.lobby, args.size, args.games, args.poll)


if __name__ == "__main__":
    asyncio.run(main())
