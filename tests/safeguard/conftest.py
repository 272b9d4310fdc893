"""Fixtures of the engine tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.safeguard.http_server import Behaviour, FakeServer


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], FakeServer]]:
    servers: list[FakeServer] = []

    def start(behaviour: Behaviour) -> FakeServer:
        server = FakeServer(behaviour).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
