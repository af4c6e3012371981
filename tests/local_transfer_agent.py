"""``python -m s3_route_agent`` for subprocess tests, with the test transfer sent to the local moto server.

In the local environment the S3 names resolve (through the emulated Route 53 Resolver) to
documentation addresses that must never receive traffic, and the transfer connects through the
system resolver to the target's own name. This wrapper keeps everything else of the agent as it
is and only points each transfer plan at ``$S3_ROUTE_AGENT_TEST_TRANSFER_ENDPOINT`` (path style),
which must be a loopback ``http://127.x.x.x:PORT`` URL. Tests only; never installed.

    python tests/local_transfer_agent.py run --config CONFIG
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import sys
from typing import Any
from urllib.parse import urlsplit


import s3_route_agent.live.apply  # noqa: E402
from s3_route_agent.cli import main  # noqa: E402
from s3_route_agent.live.transfer import TransferPlan, TransferResult  # noqa: E402

ENDPOINT = os.environ["S3_ROUTE_AGENT_TEST_TRANSFER_ENDPOINT"]
_host = urlsplit(ENDPOINT).hostname or ""
if not ipaddress.ip_address(_host).is_loopback:  # traffic stays on 127.0.0.0/8
    raise SystemExit(f"refusing a non-loopback transfer endpoint {ENDPOINT!r}")

_original = s3_route_agent.live.apply.run_transfer


def run_transfer(plan: TransferPlan, **kwargs: Any) -> TransferResult:
    """The agent's transfer, through the local moto server instead of the target's name."""
    local = dataclasses.replace(plan, endpoint_url=ENDPOINT, addressing_style="path")
    return _original(local, **kwargs)


s3_route_agent.live.apply.run_transfer = run_transfer

if __name__ == "__main__":
    sys.exit(main())
