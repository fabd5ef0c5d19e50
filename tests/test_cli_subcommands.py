"""Every subcommand is always listed; one whose module cannot load is an error naming it and the
missing piece, with the exit code of a missing dependency (25), never "invalid choice"."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from debian_cloud_tests import cli, subcommands
from debian_cloud_tests.errors import MissingDependencyError

#: `python -c` code: the main command as installed, with *BLOCKED* (argv[1]) not importable and
#: the demo's image build refused, so nothing can boot whatever the code under test does
WITHOUT = """
import sys
blocked = sys.argv.pop(1)

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == blocked or name.startswith(blocked + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Blocker())
from debian_cloud_tests.testimage import builder
def refuse(*args, **kwargs):
    raise SystemExit("the demo went on to build an image")
builder.build_image = refuse
from debian_cloud_tests.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _without(module: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT, module, *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_subcommand_whose_dependency_is_missing_says_so(tmp_path: Path) -> None:
    proc = _without("junit_xml", "gate", "results.xml", "--policy", "p.toml", cwd=tmp_path)
    assert proc.returncode == MissingDependencyError.exit_code, proc
    assert proc.stderr == ("debian-cloud-tests: error: gate: cannot load debian_cloud_tests.gate.cli: "
                           "No module named 'junit_xml'\n")
    assert proc.stdout == ""


def test_the_others_still_work_and_it_stays_listed(tmp_path: Path) -> None:
    help_text = _without("junit_xml", "--help", cwd=tmp_path)
    assert help_text.returncode == 0, help_text
    assert re.search(r"\bgate\s+unavailable: gate: cannot load debian_cloud_tests\.gate\.cli",
                     help_text.stdout), help_text.stdout
    checks = _without("junit_xml", "checks", "--format", "json", cwd=tmp_path)
    assert checks.returncode == 0 and checks.stdout.startswith("["), checks


def test_the_demo_without_its_gate_fails_before_building(tmp_path: Path) -> None:
    proc = _without("junit_xml", "demo", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == MissingDependencyError.exit_code, proc
    assert proc.stderr == ("debian-cloud-tests: error: demo: cannot load debian_cloud_tests.gate.cli: "
                           "No module named 'junit_xml'\n")
    assert "PUBLISH" not in proc.stdout and "building" not in proc.stdout


def test_every_subcommand_of_a_module_that_cannot_load(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(subcommands, "MODULES", {**subcommands.MODULES, "no_such": ("ghost", "phantom")})
    listed = cli.build_parser().format_help()
    commands = ("ghost", "phantom", "gate", "build", "pipeline", "publish")
    assert all(f"    {c} " in listed for c in commands), listed
    for command in ("ghost", "phantom"):
        # whatever the arguments: the stand-in cannot know the real options
        assert cli.main([command, "--some-option", "value", "x"]) == MissingDependencyError.exit_code
        assert capsys.readouterr().err == (f"debian-cloud-tests: error: {command}: cannot load "
                                           "debian_cloud_tests.no_such: No module named "
                                           "'debian_cloud_tests.no_such'\n")


def test_load_names_the_command() -> None:
    assert subcommands.load("gate.cli", "demo").__name__ == "debian_cloud_tests.gate.cli"
    with pytest.raises(MissingDependencyError, match=r"^demo: cannot load debian_cloud_tests\.nope: "):
        subcommands.load("nope", "demo")
