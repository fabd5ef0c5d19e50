"""Debian policy for official cloud images: apt, packages, accounts, SSH, services, hardening."""
