"""The test images the suites are proven on: a Debian cloud image built with mmdebstrap, clean
or with defects planted, cached by content (`debian-cloud-tests test-image`, the demo, the tests).

Not the way to build images for publication: that is `faibuild`, the FAI driver.
"""
