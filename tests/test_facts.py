"""The probe runner: one shell script, each probe's own output and status, and no probe can eat
the script that follows it by reading stdin."""

from __future__ import annotations

import subprocess

from debian_cloud_tests.facts import Probe, _parse, _script


def _run(probes: list[Probe]) -> dict:
    out = subprocess.run(["sh", "-s"], input=_script(probes).encode(), capture_output=True,
                         timeout=30).stdout
    return _parse(out)


def test_each_probe_reports_its_output_and_status() -> None:
    got = _run([Probe("ok", "printf 'a\\nb\\n'"), Probe("bad", "echo out; echo err >&2; exit 3")])
    assert (got["ok"].rc, got["ok"].lines()) == (0, ["a", "b"])
    assert (got["bad"].rc, got["bad"].stdout, got["bad"].stderr) == (3, "out\n", "err\n")


def test_a_probe_reading_stdin_does_not_swallow_the_rest() -> None:
    got = _run([Probe("reads", "cat"), Probe("after", "echo still here")])
    assert got["reads"].stdout == ""
    assert got["after"].stdout == "still here\n"


def test_missing_command_is_data_not_an_error() -> None:
    got = _run([Probe("missing", "no-such-command-dct")])
    assert got["missing"].rc == 127 and not got["missing"].ok


def test_binary_output_and_odd_names_survive() -> None:
    got = _run([Probe("bin", "printf '\\000\\377DCT x\\n'"), Probe("config.a[b]", "echo x")])
    assert got["bin"].stdout.encode(errors="replace").startswith(b"\x00")
    assert got["config.a[b]"].stdout == "x\n"

