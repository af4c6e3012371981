"""s3-route-agent: proves which network path S3 traffic takes from an EC2 host."""

from __future__ import annotations

__version__ = "0.1.0"
