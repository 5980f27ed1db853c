"""S3 event notifications as real S3 sends them: with ``versionId`` (versioned buckets) and ``sequencer``.

moto 5 leaves both out, so intake would have to ask S3 for each object's version (a HeadObject per file)
in the sandbox while it needs none on AWS. With this patch the sandbox runs the production path.
``sandbox.moto_server`` applies it in moto server's process.
"""

from __future__ import annotations

import itertools
from typing import Any

import moto.s3.notifications as s3_notifications

_moto_get_s3_event = s3_notifications._get_s3_event
# S3's sequencer is a hex string that grows with each event for one key; a counter is enough here.
_sequence = itertools.count(1)


def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
    event = _moto_get_s3_event(event_name, bucket, key, notification_id)
    for record in event["Records"]:
        obj = record["s3"]["object"]
        if getattr(key, "_is_versioned", False):  # unversioned buckets get no versionId, as on AWS
            obj["versionId"] = key.version_id
        obj["sequencer"] = f"{next(_sequence):016X}"
    return event


def apply() -> None:
    s3_notifications._get_s3_event = _get_s3_event
