"""Debian's AMIs in a region: those Debian's account owns, and the "latest" pointers AWS keeps
for Debian as public SSM parameters (``/aws/service/debian/release/{12,bookworm}/latest/amd64``)."""

from __future__ import annotations

import re
from typing import Any

from debian_cloud_tests.locator.model import RELEASES, Offered, Query

from . import retry, session

#: the AWS account Debian publishes its AMIs from
DEBIAN_ACCOUNT = "136693071363"
SSM_PATH = "/aws/service/debian/release"
ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}
_VERSION = re.compile(r"^debian-(\d+)-")


class AwsImages:
    def offered(self, query: Query, region: str | None) -> list[Offered]:
        sess = session.new_session(region)
        ec2 = session.ec2_client(sess)
        pointers = _latest_pointers(sess.client("ssm"), query)
        names = [f"debian-{v}-*" for v in ([query.version] if query.version else RELEASES)]
        filters = [{"Name": "name", "Values": names}, {"Name": "state", "Values": ["available"]}]
        if query.arch:
            wanted = [a for a, ours in ARCHITECTURES.items() if ours == query.arch]
            filters.append({"Name": "architecture", "Values": wanted})
        owned = retry.call(ec2.describe_images, "describe_images", Owners=[DEBIAN_ACCOUNT],
                           Filters=filters)["Images"]
        known = {image["ImageId"] for image in owned}
        pointed = [ami for ami in pointers if ami not in known]  # published from elsewhere
        if pointed:
            owned += retry.call(ec2.describe_images, "describe_images", ImageIds=pointed)["Images"]
        return [_offered(image, str(sess.region_name), pointers.get(image["ImageId"], ()))
                for image in owned if _matches(image, query)]


def _latest_pointers(ssm: Any, query: Query) -> dict[str, tuple[str, ...]]:
    """AMI -> the "latest" parameters naming it, for the query's release and arch."""
    found: dict[str, list[str]] = {}
    token = None
    while True:
        page = retry.call(ssm.get_parameters_by_path, "get_parameters_by_path", Path=SSM_PATH,
                          Recursive=True, **({"NextToken": token} if token else {}))
        for param in page["Parameters"]:
            parts = param["Name"].removeprefix(SSM_PATH + "/").split("/")
            if len(parts) != 3 or parts[1] != "latest":
                continue
            release, _, arch = parts
            if query.arch and arch != query.arch:
                continue
            if query.version and release not in (query.version, query.codename):
                continue
            found.setdefault(param["Value"], []).append(param["Name"])
        token = page.get("NextToken")
        if not token:
            return {ami: tuple(names) for ami, names in found.items()}


def _matches(image: dict[str, Any], query: Query) -> bool:
    version = _version(image)
    arch = ARCHITECTURES.get(image.get("Architecture", ""), "")
    return bool(version) and (not query.version or version == query.version) and \
        (not query.arch or arch == query.arch)


def _version(image: dict[str, Any]) -> str:
    found = _VERSION.match(image.get("Name", ""))
    return found.group(1) if found else ""


def _offered(image: dict[str, Any], region: str, pointers: tuple[str, ...]) -> Offered:
    return Offered(id=image["ImageId"], name=image.get("Name", ""), version=_version(image),
                   arch=ARCHITECTURES.get(image.get("Architecture", ""), ""),
                   created=image.get("CreationDate", ""), region=region, pointers=pointers,
                   extra={"owner": image.get("OwnerId", "")})
