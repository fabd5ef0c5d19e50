"""Clouds' metadata services and provisioning media, emulated for a local guest.

``--datasource`` on the qemu provider boots an image as its cloud would: the SMBIOS identity
cloud-init's ds-identify reads, the metadata service at its link-local address (and, for GCE,
its DNS name), the provisioning media (Azure's ``ovf-env.xml``, OpenStack's config drive).  One
module per cloud serves what that cloud serves; :mod:`.platforms` says what each cloud offers,
:mod:`.emulation` wires one guest, :mod:`.serve` is the process that answers it.
"""
