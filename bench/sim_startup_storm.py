"""Simulation (not a test): how many hosts starting at once one account and region absorbs.

EC2 throttles each API per account and region with a token bucket; a non-mutating Describe API
holds 100 tokens and gets 20 back per second (EC2 developer guide, "Request throttling for the
Amazon EC2 API", request token bucket sizes and refill rates:
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html). A new host's first
daemon cycle is cold: one call to each of its Describe APIs within about a second, so each API's
bucket sees one request per host. The first cycle waits for the host's stable offset under
``daemon.jitter_seconds`` (default 60 s; uniform over hosts), so N hosts started in the same
second (a config push, an AMI roll, a fleet restart) reach each bucket at N / jitter per second.
The rest of the fleet draws on the same buckets in steady state (``--fleet`` hosts, at the
default schedule's 5.6 calls per host-hour over 7 APIs). A throttled call is retried as
botocore's standard mode does (3 attempts, the first included; full-jitter exponential backoff,
base 1 s: the retry waits a random part of 1 s, then of 2 s); a host whose call fails all three
reports UNKNOWN and tries again at its next cycle.

For each jitter the script finds, by bisection, the most hosts started at once with no throttled
call at all, and with no host failing its first cycle (retries absorbing the rest); and the new
hosts per minute a steady arrival (an Auto Scaling group) can sustain.

    .venv/bin/python bench/sim_startup_storm.py [--fleet 2000] [--seeds 5]
"""

from __future__ import annotations

import argparse
import heapq
import random

BUCKET = 100.0            # tokens of a non-mutating action's bucket
REFILL = 20.0             # tokens per second
ATTEMPTS = 3              # botocore standard retry mode, total attempts (aws.max_attempts)
BACKOFF_BASE = 1.0        # seconds; attempt n waits uniform(0, base * 2 ** (n - 1))
CALLS_PER_HOST_HOUR_PER_API = 5.6 / 7


def simulate(hosts: int, jitter: float, fleet: int, seed: int,
             arrival_seconds: float = 0.0) -> tuple[int, int]:
    """(throttled calls, hosts whose first cycle failed) on one API's bucket.

    ``hosts`` start uniformly within ``arrival_seconds`` (0: all in the same second), each first
    calling at start + its offset under ``jitter``; the steady ``fleet`` adds its own calls."""
    rng = random.Random(seed)
    events: list[tuple[float, int, int]] = []       # (time, attempt, host; -1 for the fleet)
    for host in range(hosts):
        start = rng.uniform(0, arrival_seconds) if arrival_seconds else rng.uniform(0, 1)
        events.append((start + rng.uniform(0, jitter), 1, host))
    horizon = arrival_seconds + jitter + 60.0
    rate = fleet * CALLS_PER_HOST_HOUR_PER_API / 3600.0
    t = 0.0
    while rate > 0 and t < horizon:
        t += rng.expovariate(rate)
        events.append((t, 1, -1))
    heapq.heapify(events)
    tokens, now = BUCKET, 0.0
    throttled = failed = 0
    while events:
        when, attempt, host = heapq.heappop(events)
        tokens = min(BUCKET, tokens + (when - now) * REFILL)
        now = when
        if tokens >= 1.0:
            tokens -= 1.0
            continue
        throttled += 1
        if attempt < ATTEMPTS:
            heapq.heappush(events, (when + rng.uniform(0, BACKOFF_BASE * 2 ** (attempt - 1)),
                                    attempt + 1, host))
        elif host >= 0:
            failed += 1
    return throttled, failed


def most_hosts(jitter: float, fleet: int, seeds: int, allow_throttle: bool,
               arrival_seconds: float = 0.0) -> int:
    """The most hosts (bisection) for which every seed stays within the criterion."""
    def ok(n: int) -> bool:
        for seed in range(seeds):
            throttled, failed = simulate(n, jitter, fleet, seed, arrival_seconds)
            if failed or (throttled and not allow_throttle):
                return False
        return True
    low, high = 0, 64
    while ok(high):
        low, high = high, high * 2
    while high - low > max(1, low // 200):
        mid = (low + high) // 2
        low, high = (mid, high) if ok(mid) else (low, mid)
    return low


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=int, default=2000,
                        help="hosts already running (steady calls on the same buckets)")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print(f"one Describe API's bucket ({BUCKET:g} tokens, {REFILL:g}/s), {args.fleet} hosts "
          f"already running, {args.seeds} seeds; hosts started in the same second")
    print(f"  {'jitter_seconds':>14} {'no throttling':>14} {'no failed cycle':>16} "
          f"{'new hosts/min sustained':>24}")
    for jitter in (0.0, 60.0, 120.0, 300.0):
        clean = most_hosts(jitter, args.fleet, args.seeds, allow_throttle=False)
        retried = most_hosts(jitter, args.fleet, args.seeds, allow_throttle=True)
        sustained = most_hosts(jitter, args.fleet, args.seeds, allow_throttle=False,
                               arrival_seconds=600.0) // 10
        label = f"{jitter:g}" + (" (default)" if jitter == 60 else "")
        print(f"  {label:>14} {clean:14d} {retried:16d} {sustained:24d}")


if __name__ == "__main__":
    main()
