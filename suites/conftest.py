"""The suites' fixtures, declared here so they win over any other plugin's `host` (testinfra's
default `host` is the local machine, which must never be what a check inspects)."""

from debian_cloud_tests.plugin import boot_budget, dct_run, facts, host, instance, machine

__all__ = ["boot_budget", "dct_run", "facts", "host", "instance", "machine"]
