"""EC2 offline: moto in server mode on 127.0.0.1, plus the hooks that make it behave like EC2
where the provider's correctness depends on it.

The server runs in a thread of the test process (``ThreadedMotoServer``), so its backend can be
hooked in-process: faults injected into any API action, a security group that cannot be deleted
while an instance uses it, instances that stay ``pending`` (moto starts every one ``running``)
for ever or for a fixed time (as EC2's do while they boot), and instances backed by
:class:`Machines` (scripted consoles here, real QEMU guests in :mod:`aws_qemu`, one real sshd
in :mod:`sshd_guest`).  Anything in another process (the plugin run by
``run_suites``) reaches it over HTTP through ``AWS_ENDPOINT_URL``, as it would reach AWS.

moto and boto3 are imported when first used, never when this module is: collecting the tests
must not load a cloud SDK into the test process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pytest

REGION = "eu-west-3"
HOST_KEY_BLOCK = (
    "-----BEGIN SSH HOST KEY KEYS-----\n{key}\n-----END SSH HOST KEY KEYS-----\n")


class Machines(Protocol):
    """What stands behind moto's instances: told when EC2 starts, reboots or ends one."""

    def start(self, backend: Any, instance: Any) -> None: ...
    def reboot(self, instance_id: str) -> None: ...
    def stop(self, instance_id: str) -> None: ...
    def console(self, instance_id: str) -> str: ...


class ScriptedMachines:
    """No guest at all: a console that is empty at first (as on EC2) and then shows host keys."""

    def __init__(self, host_key: str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKey") -> None:
        self.host_key = host_key
        self.reads: dict[str, int] = {}
        self.reboots: list[str] = []
        self.started: list[str] = []
        self.stopped: list[str] = []

    def start(self, backend: Any, instance: Any) -> None:
        self.started.append(instance.id)

    def reboot(self, instance_id: str) -> None:
        self.reboots.append(instance_id)

    def stop(self, instance_id: str) -> None:
        self.stopped.append(instance_id)

    def console(self, instance_id: str) -> str:
        self.reads[instance_id] = self.reads.get(instance_id, 0) + 1
        if self.reads[instance_id] == 1:
            return ""
        text = "[    0.000000] Linux version 6.1.0 (debian-kernel@lists.debian.org)\n"
        text += HOST_KEY_BLOCK.format(key=self.host_key)
        return text + "reboot: Restarting system\n" * self.reboots.count(instance_id)


class MotoEc2:
    """One moto server for a test module; :meth:`hook` wires it to machines and faults."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def env(self, tmp: Path) -> dict[str, str]:
        """The SDK's environment: this server, dummy credentials, no metadata service, no files."""
        return {
            "AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "AKIDDCTTESTING",
            "AWS_SECRET_ACCESS_KEY": "dct-secret-never-printed", "AWS_SESSION_TOKEN": "",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"), "AWS_PROFILE": "",
            "AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
            "NO_PROXY": "127.0.0.0/8,localhost", "no_proxy": "127.0.0.0/8,localhost",
        }

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"),
                               timeout=10).close()

    def stop(self) -> None:
        self.server.stop()

    @staticmethod
    def backend(region: str = REGION) -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends

        return ec2_backends[DEFAULT_ACCOUNT_ID][region]

    def client(self, region: str = REGION) -> Any:
        import boto3

        return boto3.client("ec2", region_name=region, endpoint_url=self.url,
                            aws_access_key_id="AKIDDCTTESTING", aws_secret_access_key="x")

    def register_ami(self, region: str = REGION, arch: str = "x86_64",
                     boot_mode: str = "legacy-bios") -> str:
        """An AMI as Debian publishes one (moto's register_image drops the architecture)."""
        ami = self.client(region).register_image(
            Name=f"debian-12-{arch}-test", Architecture=arch, RootDeviceName="/dev/xvda",
            BootMode=boot_mode, VirtualizationType="hvm", EnaSupport=True,
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}])["ImageId"]
        image = self.backend(region).amis[ami]
        image.architecture, image.root_device_name, image.boot_mode = arch, "/dev/xvda", boot_mode
        return str(ami)


class Hooks:
    """In-process hooks on moto's EC2 backend, undone by the monkeypatch that installed them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, machines: Machines) -> None:
        self.machines = machines
        self.faults: dict[str, list[tuple[str, str]]] = {}
        self.calls: list[str] = []
        #: instances started from now on stay pending until terminated, as on a stuck launch
        self.stuck_pending = False
        #: instances started from now on stay pending this many seconds, then run (and their
        #: machine starts): EC2's boot time, so that launches overlapping can be measured
        self.pending_seconds = 0.0
        self._pending_until: dict[str, tuple[float, Any, Any]] = {}  # id: (deadline, backend, instance)
        #: the ``Latest`` parameter of every get_console_output call (None: not given)
        self.console_latest: list[object] = []
        self._lock = threading.Lock()
        self._patch_instances(monkeypatch)
        self._patch_actions(monkeypatch)

    def fail(self, action: str, code: str, times: int = 1, message: str = "injected fault") -> None:
        """The next *times* calls of *action* (e.g. 'run_instances') fail with AWS error *code*."""
        self.faults.setdefault(action, []).extend([(code, message)] * times)

    def hold_pending(self) -> None:
        """Instances started from now on never leave ``pending`` (terminating them still works)."""
        self.stuck_pending = True

    def _patch_instances(self, mp: pytest.MonkeyPatch) -> None:
        from moto.ec2.exceptions import EC2ClientError
        from moto.ec2.models import EC2Backend
        from moto.ec2.models.instances import InstanceState

        hooks = self

        machines = self.machines
        run, terminate, reboot = (EC2Backend.run_instances, EC2Backend.terminate_instances,
                                  EC2Backend.reboot_instances)
        delete_group = EC2Backend.delete_security_group
        authorize, revoke = (EC2Backend.authorize_security_group_ingress,
                             EC2Backend.revoke_security_group_ingress)

        def rules_changed(backend: Any) -> None:
            changed = getattr(machines, "rules_changed", None)  # machines that emulate a VPC
            if changed is not None:
                changed(backend)

        def authorize_ingress(backend: Any, *args: Any, **kwargs: Any) -> Any:
            out = authorize(backend, *args, **kwargs)
            rules_changed(backend)
            return out

        def revoke_ingress(backend: Any, *args: Any, **kwargs: Any) -> Any:
            out = revoke(backend, *args, **kwargs)
            rules_changed(backend)
            return out

        def run_instances(backend: Any, *args: Any, **kwargs: Any) -> Any:
            reservation = run(backend, *args, **kwargs)
            for instance in reservation.instances:
                if hooks.stuck_pending:
                    instance._state = InstanceState("pending", 0)
                    continue
                if hooks.pending_seconds > 0:
                    instance._state = InstanceState("pending", 0)
                    with hooks._lock:
                        hooks._pending_until[instance.id] = (
                            time.monotonic() + hooks.pending_seconds, backend, instance)
                    continue
                machines.start(backend, instance)
            return reservation

        def terminate_instances(backend: Any, instance_ids: list[str]) -> Any:
            for instance_id in instance_ids:
                machines.stop(instance_id)
            return terminate(backend, instance_ids)

        def reboot_instances(backend: Any, instance_ids: list[str]) -> Any:
            for instance_id in instance_ids:
                machines.reboot(instance_id)
            return reboot(backend, instance_ids)

        def delete_security_group(backend: Any, name: str | None = None,
                                  group_id: str | None = None) -> None:
            for instance in backend.all_instances():
                groups = {*instance.security_groups,
                          *(g for nic in instance.nics.values() for g in nic.group_set)}
                if instance.state != "terminated" and any(g.id == group_id for g in groups):
                    raise EC2ClientError("DependencyViolation",
                                         f"resource {group_id} has a dependent object")
            return delete_group(backend, name=name, group_id=group_id)

        mp.setattr(EC2Backend, "run_instances", run_instances)
        mp.setattr(EC2Backend, "terminate_instances", terminate_instances)
        mp.setattr(EC2Backend, "reboot_instances", reboot_instances)
        mp.setattr(EC2Backend, "delete_security_group", delete_security_group)
        mp.setattr(EC2Backend, "authorize_security_group_ingress", authorize_ingress)
        mp.setattr(EC2Backend, "revoke_security_group_ingress", revoke_ingress)

    def _patch_actions(self, mp: pytest.MonkeyPatch) -> None:
        from moto.ec2.responses import EC2Response

        hooks = self
        for action in ("describe_images", "describe_instance_types", "describe_vpcs",
                       "import_key_pair", "create_security_group", "authorize_security_group_ingress",
                       "run_instances", "describe_instances", "get_console_output", "reboot_instances",
                       "terminate_instances", "delete_security_group", "delete_key_pair",
                       "describe_security_groups", "describe_key_pairs", "describe_subnets",
                       "revoke_security_group_ingress"):
            mp.setattr(EC2Response, action, hooks._wrap(action, getattr(EC2Response, action)))

    def _wrap(self, action: str, original: Any) -> Any:
        from moto.ec2.exceptions import EC2ClientError

        hooks = self

        def handler(response: Any) -> Any:
            with hooks._lock:
                hooks.calls.append(action)
                pending = hooks.faults.get(action)
                fault = pending.pop(0) if pending else None
            if fault:
                raise EC2ClientError(*fault)
            hooks._run_due()
            if action == "get_console_output":
                return hooks._console(response)
            return original(response)
        return handler

    def _run_due(self) -> None:
        """Instances whose pending time is over run now (still pending ones were terminated)."""
        from moto.ec2.models.instances import InstanceState

        now = time.monotonic()
        with self._lock:
            due = [(i, b) for iid, (when, b, i) in self._pending_until.items() if when <= now]
            for instance, _ in due:
                del self._pending_until[instance.id]
        for instance, backend in due:
            if instance.state == "pending":
                instance._state = InstanceState("running", 16)
                self.machines.start(backend, instance)

    def _console(self, response: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.core.utils import utcnow
        from moto.ec2.utils import Base64EncodedString

        instance = response.ec2_backend.get_instance(response._get_param("InstanceId"))
        with self._lock:
            self.console_latest.append(response._get_param("Latest"))
        text = self.machines.console(instance.id)[-64 * 1024:]  # EC2 keeps the last 64 KiB
        result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
        if text:
            result["Output"] = Base64EncodedString.from_raw_string(text)
        return ActionResult(result)


class CheckIp(ThreadingHTTPServer):
    """Answers what AWS's checkip service would: the caller's address, here always loopback."""

    daemon_threads = True

    def __init__(self, answer: str = "127.0.0.1") -> None:
        answer_bytes = (answer + "\n").encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer_bytes)))
                self.end_headers()
                self.wfile.write(answer_bytes)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


@contextlib.contextmanager
def running_moto() -> Iterator[MotoEc2]:
    moto = MotoEc2()
    try:
        yield moto
    finally:
        moto.stop()


def leftovers(moto: MotoEc2, region: str = REGION) -> dict[str, list[str]]:
    """Everything a run may have created that still exists (the default group excepted)."""
    ec2 = moto.client(region)
    instances = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                 for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    groups = [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
              if g["GroupName"] != "default"]
    keys = [k["KeyPairId"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    return {k: v for k, v in {"instances": instances, "security_groups": groups,
                              "key_pairs": keys}.items() if v}


def no_aws_network() -> None:
    """Fail if anything would let the SDK reach a real AWS address from this process."""
    assert os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1:")
    assert os.environ.get("AWS_EC2_METADATA_DISABLED") == "true"
