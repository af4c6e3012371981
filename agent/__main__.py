"""``python -m s3_route_agent`` runs the command line."""

from __future__ import annotations

import sys

from s3_route_agent.cli import main

sys.exit(main())
