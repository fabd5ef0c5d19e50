"""apt on this host for another system's packages: a configuration of its own (sources, lists,
cache, state, no preferences), so the host's own apt setup is neither read nor changed."""

from __future__ import annotations

from pathlib import Path


def options(scratch: Path, sources: Path, arch: str, status: Path) -> list[str]:
    """apt-get's options to work in *scratch* from *sources* for *arch*, as the dpkg database
    *status* sees the system (an empty file: nothing installed).  Creates the directories."""
    for sub in ("state/lists/partial", "cache/archives/partial", "empty"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    return ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=-",
            "-o", f"Dir::Etc::PreferencesParts={scratch / 'empty'}",
            "-o", f"Dir::Etc::Preferences={scratch / 'empty' / 'none'}",
            "-o", f"Dir::State={scratch / 'state'}", "-o", f"Dir::State::status={status}",
            "-o", f"Dir::Cache={scratch / 'cache'}",
            "-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures={arch}",
            "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none"]


def archives(scratch: Path) -> Path:
    """Where apt-get --download-only leaves the packages under *options*."""
    return scratch / "cache" / "archives"
