"""cdk-nag v3 acknowledgements and checkov skips: each one names the exact finding and says why it is
acceptable. Checks skipped for every resource are in ``.checkov.yaml``; the ones for one resource here."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge ``rule_id`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``scope`` and its children."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions-{rule_id}", reason=reason))


def skip_checkov(scope: IConstruct, check_id: str, reason: str) -> None:
    """Skip checkov's ``check_id`` (e.g. ``CKV_AWS_18``) for ``scope``'s CloudFormation resource only,
    in the resource's ``Metadata.checkov.skip``, where checkov reads it."""
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    assert isinstance(resource, CfnResource), f"{scope.node.path} has no CloudFormation resource"
    current = resource.get_metadata("checkov") or {}
    skips = [*current.get("skip", []), {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", {**current, "skip": skips})
