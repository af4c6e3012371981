"""Canaries in flight: what the test transfer has PUT and not yet deleted, for the daemon's stop.

The transfer (:func:`s3_route_agent.live.transfer.run_transfer`) deletes its canary on every path out of the
transfer itself, SIGINT/SIGTERM included when it runs in the main thread (``check``). In the
daemon it runs in a worker thread, where no signal reaches it and a step stuck on a slow network
cannot be interrupted. So the transfer announces each canary here before its PUT and withdraws it
after its own DELETE; on SIGTERM the daemon drains what is left with a DELETE bounded in time
(the issue's 10 s stop budget; systemd.service(5) TimeoutStopSec= is the hard limit behind it).

A PUT still uploading while the drain's DELETE runs could complete after it; the drain therefore
checks with HEAD that the key is gone and deletes once more if it is not. After the process exits
an unfinished upload is discarded by S3 (a PUT stores an object only when the whole body has
arrived: S3 user guide, "Uploading objects"). What still slips through is removed by the next
run's stale-canary sweep (canaries older than an hour, :func:`s3_route_agent.live.transfer.remove_stale_canaries`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from s3_route_agent.aws import botocore_errors, client_error
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InFlightCanary:
    """One canary object the transfer has sent (or is sending) and not yet deleted."""

    bucket: str
    key: str
    host: str                                  # the target hostname the transfer went through
    client: Callable[[float], Any]             # timeout -> S3 client built as the transfer's own


@dataclass(frozen=True)
class DrainResult:
    """What the drain did for one canary."""

    canary: InFlightCanary
    deleted: bool
    message: str


def _gone(client: Any, canary: InFlightCanary) -> bool:
    """True when HEAD says the key does not exist (404)."""
    try:
        client.head_object(Bucket=canary.bucket, Key=canary.key)
    except client_error() as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code")
        if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
            return True
        raise
    return False


class CanaryRegistry:
    """A thread-safe set of canaries in flight (the transfer adds, the daemon drains)."""

    def __init__(self) -> None:
        """An empty registry."""
        self._lock = threading.Lock()
        self._items: dict[int, InFlightCanary] = {}
        self._tokens = itertools.count(1)

    def add(self, canary: InFlightCanary) -> int:
        """Announce ``canary``; returns the token :meth:`discard` takes."""
        with self._lock:
            token = next(self._tokens)
            self._items[token] = canary
        return token

    def discard(self, token: int | None) -> None:
        """Withdraw a canary (its transfer deleted it, or tried to and reported the outcome)."""
        if token is None:
            return
        with self._lock:
            self._items.pop(token, None)

    def pending(self) -> list[InFlightCanary]:
        """The canaries in flight now (a copy)."""
        with self._lock:
            return list(self._items.values())

    def __len__(self) -> int:
        """How many canaries are in flight."""
        with self._lock:
            return len(self._items)

    def drain(self, deadline: float, clock: Callable[[], float] = time.monotonic,
              ) -> list[DrainResult]:
        """DELETE every canary in flight, each request bounded by what is left until ``deadline``.

        Never raises for S3 or network errors: a canary it could not delete is reported (and
        logged) and stays in the registry. The caller bounds the whole call as well, because
        the name lookup of a new connection is not covered by botocore's timeouts.
        """
        with self._lock:
            items = list(self._items.items())
        results: list[DrainResult] = []
        for token, canary in items:
            remaining = deadline - clock()
            where = f"s3://{canary.bucket}/{canary.key} (via {canary.host})"
            if remaining <= 0.05:
                results.append(DrainResult(canary, False, f"no time left to delete {where}"))
                continue
            try:
                client = canary.client(max(0.1, remaining))
                deleted = False
                for _ in range(2):   # a PUT finishing after the first DELETE: delete again
                    client.delete_object(Bucket=canary.bucket, Key=canary.key)
                    if deadline - clock() <= 0.05 or _gone(client, canary):
                        deleted = True
                        break
            except botocore_errors() as exc:
                results.append(DrainResult(canary, False, f"DELETE of {where} failed: {exc}"))
                continue
            if deleted:
                self.discard(token)
                results.append(DrainResult(canary, True, f"deleted {where}"))
            else:
                results.append(DrainResult(canary, False, f"{where} still exists after DELETE"))
        for result in results:
            if result.deleted:
                logger.info("canary cleanup: %s", result.message)
            else:
                logger.error("canary cleanup: %s; the next run's stale-canary sweep removes it "
                             "after an hour", result.message)
        return results


# The process-wide registry the transfer announces to and the daemon drains.
IN_FLIGHT = CanaryRegistry()
