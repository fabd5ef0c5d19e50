"""The file-dumping probes: their shell and their reader agree on every file's content."""

from __future__ import annotations

import subprocess
from pathlib import Path

from debian_cloud_tests.probes import dump_files, dumped_files


def test_each_file_comes_back_whole_whatever_it_holds(tmp_path: Path) -> None:
    files = {
        # cloud-init's own sources.list opens with "## " headings
        "sources.list": "## Note, this file is written by cloud-init on first boot\n"
                        "deb http://deb.debian.org/debian bookworm main\n",
        "no-last-newline.yaml": "network:\n  version: 2",
        "empty.conf": "",
        "trailing-blank.conf": "a\n\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "a-directory").mkdir()
    out = subprocess.run(["sh", "-c", dump_files(f"{tmp_path}/* {tmp_path}/missing-*")],
                         capture_output=True, text=True, check=True).stdout
    assert dumped_files(out) == [(str(tmp_path / name), files[name]) for name in sorted(files)]


def test_nothing_dumped_reads_as_no_files() -> None:
    assert dumped_files("") == []
