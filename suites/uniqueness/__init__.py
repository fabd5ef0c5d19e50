"""Uniqueness: two instances of one image share no identity (host keys, machine-id, instance id)."""
