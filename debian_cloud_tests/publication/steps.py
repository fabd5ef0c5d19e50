"""The three steps of publishing on a cloud, each a command of its own that resumes from the
state file: register privately (given a local gate verdict, only if it says publish for these
bytes), test every registered copy there, then release on a publish verdict or remove on hold.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol

from ..errors import DCTError, UsageError
from ..faibuild.manifest import sha256 as file_sha256
from ..pipeline import verdict as local_verdict
from ..runargs import pytest_argv
from ..rundir import new_run_id
from ..shipped import policy as shipped_policy
from . import state as state_mod
from .errors import PublicationStateError
from .state import Publication

PUBLISHERS = {"aws": "debian_cloud_tests.providers.aws.publish:AwsPublisher",
              "openstack": "debian_cloud_tests.providers.openstack.publish:OpenStackPublisher",
              "gce": "debian_cloud_tests.providers.gce.publish:GcePublisher",
              "azure": "debian_cloud_tests.providers.azure.publish:AzurePublisher"}
STEPS = ("register", "test", "release")
#: how long a stopped test run may take to remove its cloud machines before it is killed
CHILD_STOP_SECONDS = 600


class CloudPublisher(Protocol):
    cloud: str

    def check_regions(self, regions: list[str]) -> None: ...
    def register(self, pub: Publication, raw: Path, save: Any) -> None: ...
    def test_args(self, pub: Publication, region: str) -> list[str]: ...
    def release(self, pub: Publication, save: Any) -> None: ...
    def remove(self, pub: Publication, save: Any) -> None: ...


def publisher(cloud: str, **options: Any) -> CloudPublisher:
    target = PUBLISHERS.get(cloud)
    if target is None:
        raise UsageError(f"--cloud {cloud!r}: publication on a cloud knows {', '.join(PUBLISHERS)}")
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)(**options)  # type: ignore[no-any-return]


@dataclass
class Job:
    """One publication: the image, where its state is kept, and its cloud's publisher."""

    image: Path
    state_path: Path
    cloud: CloudPublisher

    def say(self, message: str) -> None:
        print(f"debian-cloud-tests publish {self.cloud.cloud}: {message}", flush=True)

    def load(self, sha256: str | None = None) -> Publication:
        digest = sha256 or file_sha256(self.image)
        found = state_mod.load(self.state_path, self.cloud.cloud, digest)
        if found is None:
            raise PublicationStateError(f"no publication state at {self.state_path}: run the "
                                        "register step first")
        return found

    def saver(self, pub: Publication) -> Any:
        return lambda: pub.save(self.state_path)


@contextlib.contextmanager
def raw_image(image: Path, beside: Path) -> Iterator[Path]:
    """The image's raw bytes: the file itself, or a raw conversion of a qcow2 one beside the
    state file (removed after; a resumed step converts again)."""
    from ..providers.qemu.image import QCOW2_MAGIC  # not at start-up: the CLI imports this module

    with image.open("rb") as f:
        qcow2 = f.read(len(QCOW2_MAGIC)) == QCOW2_MAGIC
    if not qcow2:
        yield image
        return
    raw = beside.with_name(f".{image.stem}.publish.raw")
    try:
        proc = subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise UsageError(f"{image}: cannot convert it to raw: {proc.stderr.strip()}")
        yield raw
    finally:
        raw.unlink(missing_ok=True)


def register(job: Job, manifest: Path, verdict: Path | None, regions: list[str]) -> Publication:
    """Upload and register privately in every region (resuming what an interruption left); with
    *verdict* (a local run's gate), only when it says publish for these bytes."""
    digest = file_sha256(job.image)
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the manifest {manifest}: {exc}") from None
    if verdict is not None:
        local_verdict.require_publish(verdict, digest)
    pub = state_mod.load(job.state_path, job.cloud.cloud, digest)
    if pub is None:
        pub = Publication(job.cloud.cloud, str(job.image), digest, new_run_id(), list(regions), meta)
    elif pub.outcome:
        raise PublicationStateError(f"{job.state_path}: this publication was {pub.outcome}; give "
                                    "--state a new path to publish again")
    pub.regions += [r for r in regions if r not in pub.regions]
    job.cloud.check_regions(pub.regions)
    pub.save(job.state_path)
    job.say(f"registering privately in {', '.join(pub.regions)} (run {pub.run_id}); state "
            f"{job.state_path}")
    try:
        with raw_image(job.image, job.state_path) as raw:
            # the bytes uploaded: the image's own when it is raw, hashed once
            pub.uploaded_sha256 = digest if raw == job.image else file_sha256(raw)
            job.cloud.register(pub, raw, job.saver(pub))
    except DCTError:
        # refused (permissions, size, the cloud's error): nothing is left to resume from; an
        # interruption instead keeps the state, to resume or remove
        job.cloud.remove(pub, job.saver(pub))
        job.state_path.unlink(missing_ok=True)
        raise
    for region, image_id in pub.copies.items():
        job.say(f"registered {image_id} in {region} (private)")
    return pub


def test(job: Job, output: Path, pytest_args: tuple[str, ...] = ()) -> int:
    """Run every suite on each registered copy not tested yet; the worst pytest exit code."""
    pub = job.load()
    worst = 0
    for region, image_id in pub.copies.items():
        junit = (output / f"{Path(pub.image).stem}.{job.cloud.cloud}.{region}.results.xml").resolve()
        if pub.tested.get(region) == str(junit) and junit.exists():
            continue
        argv = pytest_argv(job.cloud.cloud, image_id, junit, (output / "artifacts").resolve(),
                           extra=(*job.cloud.test_args(pub, region), *pytest_args))
        job.say(f"testing {image_id} in {region}")
        rc = run_to_its_end([sys.executable, "-m", "pytest", *argv], output)
        job.say(f"tests on {image_id} exited {rc}; JUnit {junit}")
        if rc in (0, 1) and junit.exists():
            pub.tested[region] = str(junit)
            pub.save(job.state_path)
        worst = max(worst, rc)
    return worst


def run_to_its_end(cmd: list[str], cwd: Path) -> int:
    """Run *cmd*; stopped meanwhile, let it stop too (SIGTERM) and wait while it removes what it
    launched on the cloud, instead of killing it at once as subprocess.run does."""
    proc = subprocess.Popen(cmd, cwd=cwd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def release(job: Job, policy: Path | None, verdict_out: Path) -> int:
    """Gate the runs on the registered copies: release them all on publish, remove them all on
    hold.  0 released, 1 removed (held), 2 the gate's input error (nothing changed)."""
    from ..gate.cli import main as gate_main

    pub = job.load()
    if pub.outcome:
        job.say(f"already {pub.outcome}")
        return 0 if pub.outcome == "released" else 1
    reports = [r for r in pub.tested.values() if Path(r).exists()]
    args = [*reports, "--policy", str(policy or shipped_policy()),
            "--image-sha256", pub.uploaded_sha256, "--json", str(verdict_out),
            "--markdown", str(verdict_out.with_suffix(".md")),
            *(a for region, image_id in pub.copies.items()
              for a in ("--registered", f"{image_id}@{region}"))]
    rc = gate_main(args) if reports else 1
    if rc == 2:
        job.say("gate: input error; nothing released, nothing removed")
        return rc
    save = job.saver(pub)
    if rc == 0:
        job.cloud.release(pub, save)
        pub.outcome = "released"
        save()
        for what in pub.released:
            job.say(f"released {what}")
        return 0
    job.say("gate: HOLD (or nothing tested); removing every private copy")
    job.cloud.remove(pub, save)
    pub.outcome = "removed"
    save()
    return 1


#: which image of a build each cloud publishes (the vendor built for it)
CLOUD_VENDOR = {"aws": "ec2", "gce": "gce", "azure": "azure", "openstack": "genericcloud"}


@dataclass(frozen=True)
class Request:
    """What to publish where: the steps wanted, in order, and what each needs."""

    steps: tuple[str, ...] = STEPS
    manifest: Path | None = None
    verdict: Path | None = None  # the local gate's, for the register step
    regions: tuple[str, ...] = ()
    output: Path | None = None  # default: the image's directory
    policy: Path | None = None
    pytest_args: tuple[str, ...] = ()


def run_steps(job: Job, request: Request) -> int:
    """Register privately, test there, release or remove: the steps asked for, in order; the
    release's code (0 released, 1 removed), a test run's that did not end on its own, or 0."""
    output = request.output or job.image.parent
    if "register" in request.steps:
        if not request.regions:
            raise UsageError(f"publish on {job.cloud.cloud}: the register step needs --region "
                             "(one or more)")
        register(job, request.manifest or job.image.with_suffix(".json"), request.verdict,
                 list(request.regions))
    if "test" in request.steps:
        rc = test(job, output, request.pytest_args)
        if rc not in (0, 1):
            job.say(f"the tests did not run to their end (pytest exit {rc}): not releasing; "
                    "run the test step again, or the release step to remove the copies")
            return rc
    if "release" in request.steps:
        return release(job, request.policy, output / f"{job.image.stem}.{job.cloud.cloud}.gate.json")
    return 0
