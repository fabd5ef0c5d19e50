"""Vagrant boxes on libvirt (vagrant-libvirt), driven through python-vagrant."""

from .provider import VagrantProvider

__all__ = ["VagrantProvider"]
