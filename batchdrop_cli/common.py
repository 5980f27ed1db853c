"""Helpers the commands share: the lazily resolved target, and checks that turn bad input into advice."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from batchdrop_cli.targets import Target, UserError, resolve
from batchdrop_core.runtime import Runtime
from batchdrop_core.s3events import ObjectCreated
from batchdrop_core.tracking import Submission, TrackedFile

WORKERS = 16  # parallel DynamoDB writes for retry, backfill and reprocess


@dataclass
class Options:
    """The global options; the target is looked up on first use, so `--help` and `demo` need none."""

    sandbox: Path | None = None
    stack: str | None = None
    region: str | None = None
    profile: str | None = None
    _target: Target | None = field(default=None, repr=False)

    def target(self) -> Target:
        if self._target is None:
            self._target = resolve(
                sandbox=self.sandbox, stack=self.stack, region=self.region, profile=self.profile
            )
        return self._target


def target_of(ctx: typer.Context) -> Target:
    return ctx.ensure_object(Options).target()


def check_route(target: Target, name: str) -> str:
    names = [r.name for r in target.routes]
    if name not in names:
        raise UserError(f"unknown route {name!r}; the routes of {target.description} are: {', '.join(names)}")
    return name


def locate(target: Target, key: str, bucket: str | None) -> tuple[str, str]:
    """(bucket, key) from ``s3://bucket/key``, or a key in ``--bucket`` or the drop bucket."""
    if key.startswith("s3://"):
        bucket, _, key = key.removeprefix("s3://").partition("/")
        return bucket, key
    return bucket or target.require("drop_bucket"), key


def object_versions(
    ctx: typer.Context, key: str, version: str | None, bucket: str | None
) -> tuple[Target, str, str, list[TrackedFile]]:
    """(target, bucket, key, its tracked versions) for a command that names an object."""
    target = target_of(ctx)
    bucket, key = locate(target, key, bucket)
    return target, bucket, key, tracked_versions(target.runtime(), bucket, key, version)


def tracked_versions(rt: Runtime, bucket: str, key: str, version: str | None) -> list[TrackedFile]:
    """The tracked versions of an object (one with ``version``), newest first; UserError when none."""
    versions = rt.files.versions(bucket, key)
    if not versions:
        raise UserError(f"no tracked file s3://{bucket}/{key}; check the key, or run `batchdrop backfill`")
    if version is None:
        return versions
    chosen = [f for f in versions if f.version_id == version]
    if not chosen:
        known = ", ".join(f.version_id for f in versions)
        raise UserError(f"s3://{bucket}/{key} has no tracked version {version!r}; tracked versions: {known}")
    return chosen


def find_submission(rt: Runtime, identifier: str) -> Submission:
    """A submission by our id (``sub_…``) or Extend's batch id (``bpr_…``)."""
    if identifier.startswith("sub_"):
        submission = rt.batches.get(identifier)
    else:
        submission = rt.batches.by_batch_id(identifier)
    if submission is None:
        raise UserError(
            f"no batch {identifier!r} (give Extend's batch id or our sub_… id); `batchdrop status` lists "
            "batches in flight and recent ones"
        )
    return submission


def result_location(target: Target, result_key: str | None) -> tuple[str, str] | None:
    """(bucket, key) of a stored result; a bare key lives in the results bucket."""
    if not result_key:
        return None
    if result_key.startswith("s3://"):
        bucket, _, key = result_key.removeprefix("s3://").partition("/")
        return bucket, key
    return target.require("results_bucket"), result_key


def current_objects(s3: Any, bucket: str, prefix: str) -> list[ObjectCreated]:
    """The current version of each object under ``prefix``, as the notification for it would say."""
    objects = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if not version.get("IsLatest"):
                continue
            objects.append(
                ObjectCreated(
                    bucket=bucket,
                    key=version["Key"],
                    size=int(version.get("Size", 0)),
                    etag=(version.get("ETag") or "").strip('"') or None,
                    version_id=version.get("VersionId"),
                    sequencer=None,
                    event_name="ObjectCreated:Backfill",
                    event_time=version["LastModified"].isoformat() if version.get("LastModified") else None,
                )
            )
    return objects
