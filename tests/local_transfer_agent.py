"""``s3-route-agent`` for subprocess tests, with the test transfer sent to the local moto server.

In the local environment the S3 names resolve (through the emulated Route 53 Resolver) to
documentation addresses that must never receive traffic, and the transfer connects through the
system resolver to the target's own name. This entry point runs the agent's own command line
with a :class:`~s3_route_agent.wiring.Wiring` whose collectors point each transfer at
``$S3_ROUTE_AGENT_TEST_TRANSFER_ENDPOINT`` (path style), which must be a loopback
``http://127.x.x.x:PORT`` URL (``support.transfers_to`` refuses anything else). Tests only;
never installed.

    python tests/local_transfer_agent.py run --config CONFIG
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # for support (run as a script)

from s3_route_agent.cli import main  # noqa: E402
from support import TransfersTo  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(wiring=TransfersTo(os.environ["S3_ROUTE_AGENT_TEST_TRANSFER_ENDPOINT"])))
