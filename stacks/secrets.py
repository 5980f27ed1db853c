"""The two Extend secrets, created with a generated placeholder for the operator to overwrite."""

from __future__ import annotations

from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.nag import acknowledge


class ExtendSecrets(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.api_key = self._build_secret(
            "ExtendApiKey",
            "Extend API key used by batchdrop (set it with put-secret-value after deploying)",
            "Rotating the Extend API key happens in Extend's dashboard; the operator then stores the new "
            "key here. The functions cache it for at most 5 minutes.",
        )
        self.webhook_signing_secret = self._build_secret(
            "ExtendWebhookSigningSecret",
            "Signing secret (wss_...) of the Extend webhook endpoint that calls batchdrop",
            "Extend rotates a webhook signing secret only by re-creating the endpoint (batchdrop "
            "register-webhook or the dashboard), which returns the new secret once; it is stored here then.",
        )

    def _build_secret(
        self, construct_id: str, description: str, rotation_reason: str
    ) -> secretsmanager.Secret:
        # No value in code or context: the generated string is a placeholder until the operator sets it.
        secret = secretsmanager.Secret(self, construct_id, description=description)
        acknowledge(secret, "SMG4", rotation_reason)
        return secret
