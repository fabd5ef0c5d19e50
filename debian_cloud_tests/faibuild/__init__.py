"""Build Debian cloud images with FAI from a config space (`debian-cloud-tests build`).

The driver is deliberately thin: it checks the inputs and the host, turns release, vendor, arch
and firmware into FAI classes, runs `fai-diskimage`, and writes a manifest and the build log
next to the image.  Everything that goes into the image is decided by the config space.
"""
