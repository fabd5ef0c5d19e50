"""Providers: one package per platform behind :class:`debian_cloud_tests.provider.Provider`."""
