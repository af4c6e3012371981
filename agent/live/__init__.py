"""Live evidence: the test transfer, canaries, packet probes and path-oracle reads (they send traffic)."""
