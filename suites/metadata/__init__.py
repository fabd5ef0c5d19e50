"""Metadata: what the guest sees of its platform equals what the platform set."""
