"""The part every cloud machine shares: the console behind a throttled API call, read at most
once per poll interval and kept when a read fails; the injected keys, the JUnit properties, the
last thing the platform said, and a destroy that happens once."""

from __future__ import annotations

import abc
import time

from .machine import Machine, PlatformFacts, SSHEndpoint


class CloudMachine(Machine):
    """A machine reached through a cloud's API; subclasses read the console and remove resources."""

    #: the API call that reads the console, named in platform_log when it fails
    console_call = "console"

    def __init__(self, facts: PlatformFacts, endpoint: SSHEndpoint, injected: list[str] | None,
                 props: dict[str, str]) -> None:
        self.facts = facts
        self._endpoint = endpoint
        self._injected = injected
        self._props = props
        self._console = ""
        self._read_at = float("-inf")
        self._reason = ""
        self._destroyed = False

    @abc.abstractmethod
    def _poll_interval(self) -> float:
        """Seconds between two console reads (a module constant, so tests can shorten it)."""

    @abc.abstractmethod
    def _read_console(self, known: str) -> str:
        """The console after one more API read, given what is *known* so far; raises when the
        call fails (the readiness wait reads again)."""

    @abc.abstractmethod
    def _remove(self) -> list[BaseException]:
        """Remove what the launch created; returns the failures, never raises."""

    @property
    def ssh(self) -> SSHEndpoint:
        return self._endpoint

    def console_log(self) -> str:
        if self._destroyed or time.monotonic() - self._read_at < self._poll_interval():
            return self._console
        self._read_at = time.monotonic()
        try:
            self._console = self._read_console(self._console)
        except Exception as exc:  # best effort: the readiness wait reads it again
            self._reason = f"{self.console_call}: {exc}"
        return self._console

    def host_keys_hint(self) -> list[str] | None:
        return self._injected

    def platform_log(self) -> str:
        return self._reason

    def destroy(self) -> list[BaseException]:
        if self._destroyed:
            return []
        errors = self._remove()
        self._destroyed = not errors
        return errors

    def properties(self) -> dict[str, str]:
        return dict(self._props)
