"""The upgrade suite's machinery: where the guest upgrades from (its own sources or a signed
repository the run names), serving a local repository to one QEMU guest, and the upgrade itself."""
