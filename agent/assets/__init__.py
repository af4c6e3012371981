"""Files the agent ships for installing it: systemd units, the example config, IAM policies,
CloudWatch assets and the fleet-rollout templates.

Their one copy lives in the repository's top-level folders (``systemd/``, ``config/``, ``iam/``,
``cloudwatch/``, ``fleet/``); ``pyproject.toml`` maps each folder to a data package under this
one, so a wheel carries them here. In a source checkout (an editable install) they are read from
the top-level folders themselves.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# Folder of the repository -> what it holds (the data packages s3_route_agent.assets.NAME).
FOLDERS = {
    "systemd": "the service, the one-shot check unit and its timer",
    "config": "the commented example config",
    "iam": "the agent's and the CloudWatch agent's example IAM policies",
    "cloudwatch": "the CloudWatch agent config, dashboard, alarm and Logs Insights queries",
    "fleet": "the CloudFormation template and the SSM document of the fleet rollout",
}


def asset_path(relative: str) -> Path:
    """The installed file ``relative`` (e.g. ``systemd/s3-route-agent.service``).

    Raises FileNotFoundError when neither the wheel's copy nor the checkout's exists.
    """
    here = Path(__file__).resolve().parent
    if relative.split("/", 1)[0] not in FOLDERS:
        raise FileNotFoundError(f"{relative}: not an asset folder ({', '.join(FOLDERS)})")
    for base in (here, here.parents[1]):  # the wheel's data package; the source checkout
        candidate = base / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"asset {relative} is not installed")
