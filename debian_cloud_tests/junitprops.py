"""The names of the run facts a JUnit report carries as <testsuite> properties: written by the
plugin, read by the gate, the baseline comparison and the pipeline, spelled here once.

A provider may add properties of its own (its region, QEMU's accelerator); those are its to name.
"""

from __future__ import annotations

from enum import StrEnum


class Prop(StrEnum):
    # what was tested, known before anything boots
    DCT_VERSION = "dct_version"
    RUN_ID = "run_id"
    PROVIDER = "provider"
    IMAGE = "image"
    #: the alias given as --image (debian-13), which the image property resolves
    IMAGE_ALIAS = "image_alias"
    ARCH = "arch"
    FIRMWARE = "firmware"
    INSTANCE_TYPE = "instance_type"
    IMAGE_TYPE = "image_type"
    RELEASE = "release"
    IMAGE_SHA256 = "image_sha256"
    IMAGE_SIZE = "image_size"
    #: an image registered on a cloud by `publish`: its id and region there (the image_sha256
    #: then is that of the bytes uploaded, as its registration records it)
    REGISTERED_IMAGE = "registered_image"
    REGISTERED_REGION = "registered_region"
    PARALLEL_RUN = "parallel_run"
    PARALLEL_LABEL = "parallel_label"
    # the machine, once ready
    BOOT_SECONDS = "boot_seconds"
    HOST_KEYS_KNOWN_SECONDS = "host_keys_known_seconds"
    CLOUD_INIT_WAIT_SECONDS = "cloud_init_wait_seconds"
    INSTANCE_ID = "instance_id"
    CONSOLE_LOG = "console_log"
    # what the guest says of itself
    OS_RELEASE = "os_release"
    OS_VERSION_ID = "os_version_id"
    OS_CODENAME = "os_codename"
    VERSION_CODENAME = "version_codename"
    PACKAGES = "packages"
    LISTENING_SOCKETS = "listening_sockets"
    CLOUD_INIT_STAGE_SECONDS = "cloud_init_stage_seconds"
    #: each probe of the shared gather: [start from the first probe's, seconds, CPU seconds], JSON
    PROBE_SECONDS = "probe_seconds"
    #: Mbit/s one instance sent another of the same image (network_perf): less is worse
    THROUGHPUT_MBPS = "throughput_mbps"
    # whether the run finished and what it left out
    TESTS_COLLECTED = "tests_collected"
    TESTS_SELECTED = "tests_selected"
    TESTS_DESELECTED = "tests_deselected"
    EXIT_STATUS = "exit_status"
    INTERRUPTED = "interrupted"
    STOP_SIGNAL = "stop_signal"
    STOPPED_EARLY = "stopped_early"
    FILTER_KEYWORD = "filter_keyword"
    FILTER_MARKERS = "filter_markers"
    FILTER_IGNORED = "filter_ignored"
    SUITES_SELECTED = "suites_selected"
    SUITES_FILTERED = "suites_filtered"
