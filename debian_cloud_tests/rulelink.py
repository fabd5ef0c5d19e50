"""A peer link made of firewall rules, one per direction: each rule lives on the machine whose
firewall (security group) holds it and is recorded there as soon as it exists, so the machine's
destroy removes it if the link is never closed (a run ended early, a group the user gave)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from .machine import LinkEnd, PeerLink

R = TypeVar("R")
#: removes one rule; returns the failures, never raises
Remove = Callable[[Any, R], list[BaseException]]


def remove_recorded(rules: list[R], remove: Callable[[R], list[BaseException]]) -> list[BaseException]:
    """Remove each of *rules*, dropping from the list those removed; the failures."""
    errors: list[BaseException] = []
    for rule in list(rules):
        failed = remove(rule)
        if not failed:
            rules.remove(rule)
        errors += failed
    return errors


class RuleLink(PeerLink, Generic[R]):
    """Rules added through :meth:`open`, each recorded in its machine's ``created.rules``;
    :meth:`close` removes them (``remove(machine, rule)``)."""

    def __init__(self, ends: tuple[LinkEnd, LinkEnd], remove: Remove[R]) -> None:
        super().__init__(ends)
        self._remove = remove
        self._added: list[tuple[Any, R]] = []

    def open(self, steps: Iterable[tuple[Any, Callable[[], R | None]]]) -> None:
        """Run each step's rule maker for its machine (None: the rule was there already and is
        not ours); on any failure remove what was added, and raise."""
        try:
            for machine, make in steps:
                rule = make()
                if rule is not None:
                    machine.created.rules.append(rule)
                    self._added.append((machine, rule))
        except BaseException:
            self.close()
            raise

    def close(self) -> list[BaseException]:
        errors: list[BaseException] = []
        added, self._added = self._added, []
        for machine, rule in added:
            failed = self._remove(machine, rule)
            if not failed and rule in machine.created.rules:
                machine.created.rules.remove(rule)
            errors += failed
        return errors
