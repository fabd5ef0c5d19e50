"""Networking: the instance got its network from the platform, through cloud-init."""
