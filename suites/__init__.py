"""The conformance suites, one package each; checks are plain pytest functions on `host`."""
