"""`debian-cloud-tests providers`: is each provider installed, and are its credentials found?

Each provider answers through :meth:`Provider.preflight`, which reads configuration only: nothing
is created, no token is requested, no cloud is contacted.  A provider that is not ready keeps the
typed error it raised, so ``--require NAME`` exits with that error's code, as a run would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .errors import DCTError, MissingDependencyError
from .provider import available, get_provider

READY, NOT_READY, NOT_INSTALLED = "ready", "not ready", "not installed"


@dataclass
class Report:
    """One provider's answer; *error* is why it is not ready (None when it is)."""

    name: str
    installed: bool
    ready: bool
    detail: str
    error: DCTError | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return READY if self.ready else NOT_READY if self.installed else NOT_INSTALLED

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "installed": self.installed, "ready": self.ready,
                "detail": self.detail}


def _one_line(name: str, text: str) -> str:
    """The message without its "name: " prefix (the table has a NAME column), on one line."""
    text = re.sub(r"\s+", " ", text).strip()
    return text.removeprefix(f"{name}: ")


def check(name: str, options: Mapping[str, str]) -> Report:
    """Ask one provider; an unexpected exception is reported, never raised, so one broken
    provider cannot hide the others."""
    try:
        detail = get_provider(name).preflight(options)
    except MissingDependencyError as exc:
        return Report(name, False, False, _one_line(name, exc.message), exc)
    except ImportError as exc:  # a provider from an entry point whose own import fails
        error = MissingDependencyError(f"{name}: cannot be imported ({exc})")
        return Report(name, False, False, _one_line(name, error.message), error)
    except DCTError as exc:
        return Report(name, True, False, _one_line(name, exc.message), exc)
    except Exception as exc:
        error = DCTError(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
        return Report(name, True, False, _one_line(name, error.message), error)
    return Report(name, True, True, _one_line(name, detail))


def check_all(names: Sequence[str], options: Mapping[str, str]) -> list[Report]:
    """*names* in the order given, or every provider known, alphabetically.

    Raises:
        UnknownProviderError: a name no provider has (before anything is checked).
    """
    known = available()
    if not names:
        names = sorted(known)
    for name in names:
        if name not in known:
            get_provider(name)  # raises UnknownProviderError with the list of names
    return [check(name, options) for name in names]


def as_table(reports: Sequence[Report]) -> str:
    rows = [("NAME", "STATUS", "DETAIL")] + [(r.name, r.status, r.detail) for r in reports]
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{n:<{width[0]}}  {s:<{width[1]}}  {d}".rstrip() for n, s, d in rows)


def as_json(reports: Sequence[Report]) -> str:
    return json.dumps([r.as_dict() for r in reports], indent=2)


def require(reports: Sequence[Report], names: Sequence[str]) -> None:
    """Raise the error of the first provider in *names* that is not ready.

    Raises:
        DCTError: that provider's own error, so the exit code is the one a run would get.
    """
    by_name = {r.name: r for r in reports}
    for name in names:
        error = by_name[name].error
        if error is not None:
            raise error
