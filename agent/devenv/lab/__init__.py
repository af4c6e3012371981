"""The network-namespace lab: a small VPC world where the agent's live evidence is real traffic."""
