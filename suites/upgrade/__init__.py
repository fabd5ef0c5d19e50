"""Upgrade: the guest's `apt-get full-upgrade` succeeds, it reboots into the new kernel and comes
back the same healthy machine.  Runs last, and only when asked for (--upgrade)."""
