"""`batchdrop register-webhook`, and the registration `batchdrop setup` shares: the endpoint at Extend, its
signing secret in Secrets Manager, and a subscription per route whose runs report through one (workflows).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from batchdrop_cli import output
from batchdrop_cli.common import target_of
from batchdrop_cli.targets import Target, UserError
from batchdrop_cli.views import JsonOption
from batchdrop_core.extend import ExtendError
from batchdrop_core.extend.client import DEFAULT_WEBHOOK_EVENTS
from batchdrop_core.extend.processors import processor_type


# -- register-webhook -------------------------------------------------------------------------------------
def register_webhook(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="Webhook URL (default: the stack's WebhookUrl).")] = None,
    name: Annotated[str, typer.Option(help="Name of the endpoint in Extend.")] = "batchdrop",
    json_output: JsonOption = False,
) -> None:
    """Create the Extend webhook endpoint for batch events and store its signing secret (setup does this
    once; run it to rotate the signing secret).

    Example: batchdrop register-webhook --url https://abc123.execute-api.eu-west-1.amazonaws.com/prod/webhooks/extend
    """
    target = target_of(ctx)
    target.require("api_key_secret")  # the Extend client reads the API key from it
    url = url or target.webhook_url
    if not url:
        raise UserError(f"no webhook URL known for {target.description}; pass --url")
    endpoint_id, secret_id = create_webhook(target, target.runtime().extend, url, name)
    data = {
        "endpointId": endpoint_id,
        "url": url,
        "events": list(DEFAULT_WEBHOOK_EVENTS),
        "secret": secret_id,
    }
    if json_output:
        output.print_json(data)
        return
    output.console().print(
        f"Registered Extend webhook endpoint {endpoint_id} for {url}.\n"
        f"Its signing secret is stored in {secret_id}; the webhook function uses it within 5 minutes "
        "(it caches secrets)."
    )


def create_webhook(target: Target, extend: Any, url: str, name: str) -> tuple[str, str]:
    """Create the Extend webhook endpoint for batch events, store its signing secret, and subscribe it to
    the run events of every route whose type is subscribed per resource (workflows): (endpoint id, secret
    id)."""
    secret_id = target.require("webhook_secret")
    endpoint = extend.create_webhook_endpoint(url, name=name, enabled_events=DEFAULT_WEBHOOK_EVENTS)
    # Extend shows the signing secret only in this response, so a failure to store it must say what to do.
    if not endpoint.signing_secret:
        raise UserError(
            f"Extend created endpoint {endpoint.id} but returned no signing secret; delete it in Extend"
        )
    try:
        target.runtime().client("secretsmanager").put_secret_value(
            SecretId=secret_id, SecretString=endpoint.signing_secret
        )
    except (BotoCoreError, ClientError) as exc:
        raise UserError(
            f"Extend created webhook endpoint {endpoint.id}, but its signing secret could not be stored in "
            f"{secret_id} ({exc}); delete that endpoint in Extend and run register-webhook again"
        ) from None
    for route in target.routes:
        info = processor_type(route.type)
        if info.subscription_resource and route.processor_id:
            try:
                extend.create_webhook_subscription(
                    endpoint.id, info.subscription_resource, route.processor_id, info.run_events
                )
            except ExtendError as exc:
                raise UserError(
                    f"webhook endpoint {endpoint.id} is registered, but subscribing it to the runs of "
                    f"{info.subscription_resource} {route.processor_id} (route {route.name}) failed: {exc}; "
                    "fix the route's id and run `batchdrop setup --reregister-webhook`"
                ) from None
    return endpoint.id, secret_id
