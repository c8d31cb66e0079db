"""Who is subscribed to what on this gateway: rooms by audience, and viewers by (room, user). No I/O.

Generic over the connection type so that tests use plain strings and the shell uses websockets
connections.  Every gateway instance reads all partitions of the output topics, so this index alone
decides which local connections an event reaches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from typing import Generic, TypeVar

from ws_gateway.rooms import Audience

C = TypeVar("C", bound=Hashable)


class Hub(Generic[C]):
    def __init__(self) -> None:
        self._rooms: dict[tuple[str, Audience], set[C]] = defaultdict(set)
        self._users: dict[tuple[str, str], set[C]] = defaultdict(set)
        self._of: dict[C, set[tuple[str, Audience]]] = defaultdict(set)
        self._user_of: dict[C, tuple[str, str]] = {}

    def add_viewer(self, conn: C, room: str, user: str) -> None:
        """Index ``conn`` as ``user`` in ``room`` so that the user's order results reach it."""
        self._users[(room, user)].add(conn)
        self._user_of[conn] = (room, user)

    def subscribe(self, conn: C, room: str, audience: Audience) -> None:
        self._rooms[(room, audience)].add(conn)
        self._of[conn].add((room, audience))

    def remove(self, conn: C) -> None:
        """Forget ``conn`` everywhere (on disconnect); empty index entries are deleted."""
        for key in self._of.pop(conn, ()):
            members = self._rooms.get(key)
            if members is not None:
                members.discard(conn)
                if not members:
                    del self._rooms[key]
        user_key = self._user_of.pop(conn, None)
        if user_key is not None:
            users = self._users.get(user_key)
            if users is not None:
                users.discard(conn)
                if not users:
                    del self._users[user_key]

    def members(self, room: str, audience: Audience) -> set[C]:
        return self._rooms.get((room, audience), set())

    def of_user(self, room: str, user: str) -> set[C]:
        return self._users.get((room, user), set())

    def rooms(self) -> set[str]:
        return {room for room, _ in self._rooms}

    def __len__(self) -> int:
        return len(self._of.keys() | self._user_of.keys())
