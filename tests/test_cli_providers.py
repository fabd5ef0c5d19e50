"""`debian-cloud-tests providers`: installed, credentials found and from where, never a secret.

The real command runs in a subprocess with an environment of the test's own: a HOME with nothing
in it, no cloud variables but the ones a test sets, and every metadata server pointed at a closed
port on 127.0.0.1, so nothing is sent beyond this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from debian_cloud_tests.providers.aws.errors import CredentialsError as AwsCredentialsError

_CLOUD_VARS = ("AWS_", "GOOGLE_", "GCE_", "CLOUDSDK_", "AZURE_", "OS_", "IDENTITY_", "MSI_")
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
AZURE_SECRET = "azure-sp-secret-do-not-print"
OS_PASSWORD = "openstack-password-do-not-print"


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    def row(self, name: str) -> str:
        """The table line of provider *name*."""
        return next(line for line in self.stdout.splitlines() if line.split()[:1] == [name])

    def explain(self) -> str:
        return f"rc={self.rc}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def providers(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run the command with a clean environment plus *env*."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(_CLOUD_VARS)}
    base.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                 "DCT_CACHE_DIR": str(tmp_path / "cache"), "AWS_EC2_METADATA_DISABLED": "true",
                 "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
                 "NO_GCE_CHECK": "True", "AWS_CONFIG_FILE": str(home / "no-aws-config"),
                 "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
                 "CLOUDSDK_CONFIG": str(home / "gcloud"), "AZURE_CONFIG_DIR": str(home / "azure"),
                 "OS_CLIENT_CONFIG_FILE": str(tmp_path / "no-clouds.yaml")})
    base.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "debian_cloud_tests.cli", "providers", *args],
                          capture_output=True, text=True, env=base, cwd=tmp_path, timeout=120)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, result.explain()
    for secret in (AWS_SECRET, AZURE_SECRET, OS_PASSWORD, "PRIVATE KEY"):
        assert secret not in proc.stdout + proc.stderr, result.explain()
    return result


def test_aws_env_credentials_and_region(tmp_path: Path) -> None:
    run = providers(tmp_path, "aws", env={"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
                                          "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                                          "AWS_DEFAULT_REGION": "eu-west-1"})
    assert run.rc == 0, run.explain()
    row = run.row("aws")
    assert " ready " in row and "credentials from env" in row and "region eu-west-1" in row, row
    assert "AKIAIOSFODNN7EXAMPLE" not in run.stdout


def test_aws_without_credentials_names_what_to_set(tmp_path: Path) -> None:
    run = providers(tmp_path, "aws")
    assert run.rc == 0, run.explain()
    row = run.row("aws")
    assert "not ready" in row and "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in row, row


def test_missing_sdk_names_the_extra(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "boto3"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named boto3')\n")
    run = providers(tmp_path, "aws", env={"PYTHONPATH": str(tmp_path / "site")})
    row = run.row("aws")
    assert "not installed" in row and "pip install 'debian-cloud-tests[aws]'" in row, row


def _service_account(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "dct-preflight", "private_key_id": "0123abcd",
        "private_key": pem, "client_email": "dct@dct-preflight.iam.gserviceaccount.com",
        "client_id": "1234", "token_uri": "http://127.0.0.1:9/token"}))


def test_gce_service_account_file(tmp_path: Path) -> None:
    _service_account(tmp_path / "sa.json")
    run = providers(tmp_path, "gce", env={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "sa.json")})
    assert run.rc == 0, run.explain()
    row = run.row("gce")
    assert " ready " in row and "service account" in row and "project dct-preflight" in row, row
    assert "0123abcd" not in run.stdout


def test_gce_without_credentials_names_what_to_set(tmp_path: Path) -> None:
    run = providers(tmp_path, "gce")
    row = run.row("gce")
    assert "not ready" in row and "GOOGLE_APPLICATION_CREDENTIALS" in row, row


def test_azure_service_principal_from_environment(tmp_path: Path) -> None:
    run = providers(tmp_path, "azure", env={
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000001",
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000002", "AZURE_CLIENT_SECRET": AZURE_SECRET,
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000003"})
    assert run.rc == 0, run.explain()
    row = run.row("azure")
    assert " ready " in row and "AZURE_CLIENT_SECRET" in row, row
    assert "subscription 00000000-0000-0000-0000-000000000003" in row, row


def test_azure_without_credentials_names_what_to_set(tmp_path: Path) -> None:
    run = providers(tmp_path, "azure", env={"AZURE_SUBSCRIPTION_ID": "sub"})
    row = run.row("azure")
    assert "not ready" in row and "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET" in row, row


def _clouds_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "clouds.yaml"
    path.write_text(f"""clouds:
  dct-test:
    auth:
      auth_url: http://127.0.0.1:9/identity/v3
      username: tester
      password: {OS_PASSWORD}
      project_name: dct
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
""")
    return path


def test_openstack_cloud_from_clouds_yaml(tmp_path: Path) -> None:
    env = {"OS_CLIENT_CONFIG_FILE": str(_clouds_yaml(tmp_path)), "OS_CLOUD": "dct-test"}
    run = providers(tmp_path, "openstack", env=env)
    assert run.rc == 0, run.explain()
    row = run.row("openstack")
    assert " ready " in row and "cloud dct-test" in row and "127.0.0.1:9" in row, row


def test_openstack_unknown_cloud_names_what_to_set(tmp_path: Path) -> None:
    env = {"OS_CLIENT_CONFIG_FILE": str(_clouds_yaml(tmp_path))}
    run = providers(tmp_path, "openstack", "--os-cloud", "nowhere", env=env)
    row = run.row("openstack")
    assert "not ready" in row and "nowhere" in row and "set OS_CLOUD (or --os-cloud)" in row, row


def test_ssh_needs_nothing(tmp_path: Path) -> None:
    run = providers(tmp_path, "ssh")
    assert "nothing to find: give --host, --ssh-key, --host-key" in run.row("ssh")


@pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="qemu-system-x86 not installed")
def test_qemu_lists_firmware_and_runs_no_kvm_probe(tmp_path: Path) -> None:
    run = providers(tmp_path, "qemu")
    row = run.row("qemu")
    assert " ready " in row and "amd64 bios" in row, row
    assert not (tmp_path / "cache" / "kvm-probe.json").exists()


def test_json_is_a_list_of_reports(tmp_path: Path) -> None:
    run = providers(tmp_path, "--json", "aws", "ssh")
    assert run.rc == 0, run.explain()
    reports = json.loads(run.stdout)
    assert [r["name"] for r in reports] == ["aws", "ssh"]
    assert all(set(r) == {"name", "installed", "ready", "detail"} for r in reports)
    assert reports[0]["installed"] is True and reports[0]["ready"] is False
    assert reports[1]["ready"] is True


def test_require_without_credentials_exits_with_their_code(tmp_path: Path) -> None:
    run = providers(tmp_path, "--require", "aws")
    assert run.rc == AwsCredentialsError.exit_code, run.explain()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("debian-cloud-tests: error: aws: no credentials"), \
        run.explain()


def test_require_ready_provider_exits_zero(tmp_path: Path) -> None:
    run = providers(tmp_path, "--require", "ssh")
    assert run.rc == 0 and run.stderr == "", run.explain()
    assert [line.split()[0] for line in run.stdout.splitlines()] == ["NAME", "ssh"]


def test_unknown_provider_is_its_own_code(tmp_path: Path) -> None:
    from debian_cloud_tests.errors import UnknownProviderError

    run = providers(tmp_path, "--require", "nope")
    assert run.rc == UnknownProviderError.exit_code, run.explain()
