"""Publish to S3-compatible storage with boto3: the image, its manifest and the gate verdict.

Registration is object metadata: the image object carries the sha256, release, vendor, arch and
the verdict, and is read back after the upload to prove it arrived whole.  The endpoint, region
and credentials come from boto3's usual sources (AWS_ENDPOINT_URL for a non-AWS store).
"""

from __future__ import annotations

from typing import Any

from .errors import PublishError
from .publishers import Release


def _split(destination: str) -> tuple[str, str]:
    rest = destination.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise PublishError(f"bad destination {destination!r}; write s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


class S3Publisher:
    def __init__(self, client: Any = None) -> None:
        self._client = client

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def publish(self, release: Release, destination: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = _split(destination)
        key = "/".join(p for p in (prefix, release.image.name) if p)
        meta = {"sha256": release.sha256, "gate-verdict": "publish",
                **{k: str(release.meta.get(k, "")) for k in ("release", "vendor", "arch", "firmware",
                                                              "build_date", "fai_version")}}
        s3 = self.client()
        written = []
        try:
            s3.upload_file(str(release.image), bucket, key, ExtraArgs={"Metadata": meta})
            for path, suffix in ((release.manifest, ".manifest.json"), (release.verdict, ".gate.json")):
                s3.upload_file(str(path), bucket, key + suffix,
                               ExtraArgs={"Metadata": {"sha256": release.sha256},
                                          "ContentType": "application/json"})
                written.append(f"s3://{bucket}/{key}{suffix}")
            head = s3.head_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise PublishError(f"upload to s3://{bucket}/{key} failed: {exc}") from None
        if head.get("ContentLength") != release.image.stat().st_size or \
                head.get("Metadata", {}).get("sha256") != release.sha256:
            raise PublishError(f"s3://{bucket}/{key} does not match the image after the upload")
        return [f"s3://{bucket}/{key}", *written]
