"""One Vagrant project directory driven through python-vagrant, its failures as one line each.

python-vagrant runs the synchronous verbs (box add/list, ssh-config, destroy, plugin list) with
their output appended to ``vagrant.log`` in the project; when one fails, the lines it added are
what the error quotes.  ``vagrant up`` is not among them: it runs in the background (see
:mod:`.machine`) so the readiness wait can read the console while the machine boots.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from debian_cloud_tests.errors import MissingDependencyError, ProviderError

from .tools import environment, one_line, python_vagrant

T = TypeVar("T")
LOG = "vagrant.log"


class Project:
    """The Vagrantfile's directory, with the environment every vagrant command of it gets."""

    def __init__(self, root: Path, vagrant_home: Path | None) -> None:
        self.root = root
        self.env = environment(vagrant_home)
        self.log = root / LOG
        module = python_vagrant()
        log_cm = module.make_file_cm(str(self.log))
        self._vagrant = module.Vagrant(root=str(root), env=self.env, out_cm=log_cm, err_cm=log_cm)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        mark = self.log.stat().st_size if self.log.exists() else 0
        try:
            return fn(*args, **kwargs)
        except subprocess.CalledProcessError:
            with self.log.open("rb") as fh:
                fh.seek(mark)
                said = fh.read().decode(errors="replace")
            raise ProviderError(f"vagrant: {what} failed: {one_line(said)}") from None

    def libvirt_plugin_version(self) -> str:
        """The installed vagrant-libvirt's version.

        Raises:
            MissingDependencyError: the plugin is not installed, naming the package.
        """
        plugins = self._call("`vagrant plugin list`", self._vagrant.plugin_list)
        found = [p for p in plugins if p.name == "vagrant-libvirt"]
        if not found:
            raise MissingDependencyError("vagrant: the vagrant-libvirt plugin is not installed "
                                         "(apt-get install vagrant-libvirt)")
        return str(found[0].version).split(",")[0].strip()

    def version(self) -> str:
        return str(self._call("`vagrant --version`", self._vagrant.version))

    def box_names(self) -> set[str]:
        """Boxes added for the libvirt provider."""
        boxes = self._call("`vagrant box list`", self._vagrant.box_list)
        return {b.name for b in boxes if b.provider == "libvirt"}

    def box_add(self, name: str, path: Path) -> None:
        self._call(f"`vagrant box add {name}`", self._vagrant.box_add, name, str(path))

    def ssh_config(self) -> dict[str, str]:
        """HostName, Port, User… as `vagrant ssh-config` prints them."""
        text = self._call("`vagrant ssh-config`", self._vagrant.ssh_config)
        return dict(self._vagrant.conf(ssh_config=text))

    def destroy(self) -> None:
        self._call("`vagrant destroy -f`", self._vagrant.destroy)
