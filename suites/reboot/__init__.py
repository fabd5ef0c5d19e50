"""Reboot: soft and hard reboots bring back the same machine, healthy. Runs after every other suite."""
