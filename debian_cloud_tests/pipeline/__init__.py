"""Build, test, gate and publish one image (`debian-cloud-tests pipeline`).

Publication is a plug-in point (entry-point group `debian_cloud_tests.publishers`); a publisher
only ever runs after the gate said *publish* for the exact bytes it is about to upload.
"""
