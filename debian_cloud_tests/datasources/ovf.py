"""Azure's provisioning media: the ``ovf-env.xml`` the platform puts on a CD-ROM for a new VM,
with the admin user, host name, SSH key and custom data (the user-data) the VM was created with.

cloud-init's Azure datasource mounts /dev/sr0 and reads it; custom data reaches the guest only
this way (IMDS does not carry it), so a VM without the media would lose its user-data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from debian_cloud_tests.isofs import write_iso

TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
    xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
    xmlns:wa="http://schemas.microsoft.com/windowsazure"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <wa:ProvisioningSection>
    <wa:Version>1.0</wa:Version>
    <wa:LinuxProvisioningConfigurationSet>
      <wa:ConfigurationSetType>LinuxProvisioningConfiguration</wa:ConfigurationSetType>
      <wa:HostName>{hostname}</wa:HostName>
      <wa:UserName>{username}</wa:UserName>
      <wa:DisableSshPasswordAuthentication>{disable_password}</wa:DisableSshPasswordAuthentication>
      <wa:SSH>
        <wa:PublicKeys>{keys}
        </wa:PublicKeys>
      </wa:SSH>
      <wa:CustomData>{custom_data}</wa:CustomData>
    </wa:LinuxProvisioningConfigurationSet>
  </wa:ProvisioningSection>
  <wa:PlatformSettingsSection>
    <wa:Version>1.0</wa:Version>
    <wa:PlatformSettings>
      <wa:KmsServerHostname>kms.core.windows.net</wa:KmsServerHostname>
      <wa:ProvisionGuestAgent>false</wa:ProvisionGuestAgent>
      <wa:GuestAgentPackageName xsi:nil="true" />
      <wa:PreprovisionedVm>false</wa:PreprovisionedVm>
    </wa:PlatformSettings>
  </wa:PlatformSettingsSection>
</Environment>
"""
KEY = """
          <wa:PublicKey>
            <wa:Fingerprint></wa:Fingerprint>
            <wa:Path>{path}</wa:Path>
            <wa:Value>{value}</wa:Value>
          </wa:PublicKey>"""


@dataclass
class OvfEnv:
    """What a VM's ``osProfile`` puts on the provisioning media."""

    hostname: str
    username: str
    public_keys: list[dict[str, str]]  # osProfile's {"path", "keyData"}
    custom_data: str = ""  # base64, as ARM takes it
    disable_password: bool = True

    def xml(self) -> str:
        keys = "".join(KEY.format(path=escape(k.get("path", "")), value=escape(k.get("keyData", "")))
                       for k in self.public_keys)
        return TEMPLATE.format(hostname=escape(self.hostname), username=escape(self.username),
                               disable_password=str(self.disable_password).lower(), keys=keys,
                               custom_data=escape(self.custom_data))


def write_ovf_iso(path: Path, env: OvfEnv) -> Path:
    """The media as an ISO 9660 volume (Azure's is UDF; cloud-init mounts either)."""
    return write_iso(path, "rd_rdfe_stable", {"ovf-env.xml": env.xml()})
