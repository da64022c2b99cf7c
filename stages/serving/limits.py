"""How much the server takes on: bytes, seconds and requests at once."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: a request body larger than this is refused (413): a phone's photo fits, 30 MB does not
MAX_BODY = 8 * 2**20
#: seconds a client may take to send a whole request (headers and body); also the most a
#: kept-alive connection may stay silent before its next request
TIMEOUT = 10.0
#: connections served at once: more wait, unanswered, in the listen queue until one ends
CONNECTIONS = 32
#: requests that may wait for a picture reader, per reader; beyond that the answer is 503
WAITING_PER_WORKER = 8
#: seconds a request may wait for a reader before it is answered 503
WAIT = 30.0


def default_workers() -> int:
    """Pictures read at once: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Limits:
    """What the server takes on at once and from each client."""

    workers: int = default_workers()
    timeout: float = TIMEOUT
    max_body: int = MAX_BODY
    connections: int = CONNECTIONS
    wait: float = WAIT

    @property
    def waiting(self) -> int:
        """Requests that may wait for a reader while ``workers`` pictures are read."""
        return WAITING_PER_WORKER * self.workers
