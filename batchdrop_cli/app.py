"""The `batchdrop` command: global options, error handling, and the command list."""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
from typer.core import TyperGroup

from batchdrop_cli import (
    actions,
    configure,
    export,
    health,
    output,
    reprocess,
    routes,
    status,
    views,
    waiting,
    webhooks,
)
from batchdrop_cli.common import Options
from batchdrop_cli.targets import UserError
from batchdrop_core.config import ConfigError
from batchdrop_core.extend import ExtendError, ExtendRejectedError
from batchdrop_core.observability import logger

NO_CREDENTIALS = (
    "no AWS credentials found: run `aws configure` or `aws sso login`, or set AWS_PROFILE (or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); for a local sandbox pass --sandbox PATH instead"
)
CREDENTIAL_ERRORS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
}
ACCESS_ERRORS = {"AccessDenied", "AccessDeniedException", "AuthorizationError"}


class _Group(TyperGroup):
    """Turns the errors an operator can act on into one line of advice and exit code 1, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UserError, ConfigError) as exc:
            message = str(exc)
        except NoCredentialsError:
            message = NO_CREDENTIALS
        except NoRegionError:
            message = "no AWS region: pass --region, or set AWS_REGION"
        except EndpointConnectionError as exc:
            options = ctx.obj if isinstance(ctx.obj, Options) else Options()
            cause = "is the sandbox running?" if options.sandbox else "check the network and --region"
            message = f"cannot reach {exc.kwargs.get('endpoint_url')}: {cause}"
        except ClientError as exc:
            message = _aws_error(exc)
        except ExtendError as exc:
            message = str(exc)
            if isinstance(exc, ExtendRejectedError) and exc.is_auth_problem:
                message += "; check the Extend API key stored in the deployment's API key secret"
        output.error(message)
        raise typer.Exit(1)


def _aws_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code, text = error.get("Code", "?"), error.get("Message", "")
    operation = exc.operation_name
    if code in CREDENTIAL_ERRORS:
        return f"AWS rejected your credentials ({code}: {text}); refresh them (e.g. `aws sso login`)"
    if code in ACCESS_ERRORS:
        return f"AWS denied {operation} ({text}); use credentials allowed to operate batchdrop"
    return f"AWS error in {operation}: {code}: {text}"


app = typer.Typer(
    cls=_Group,
    name="batchdrop",
    help="Operate batchdrop: inspect files and batches, wait, flush, retry, reprocess, redrive, backfill.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"batchdrop {_version()}")
        raise typer.Exit


def _version() -> str:
    try:
        return importlib.metadata.version("batchdrop")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


@app.callback()
def _global_options(
    ctx: typer.Context,
    stack: Annotated[
        str | None,
        typer.Option(
            envvar="BATCHDROP_STACK", help="Stack prefix (default: cdk.json stackPrefix, or Batchdrop)."
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="AWS region of the stacks (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)."
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="AWS profile to use (default: AWS_PROFILE, or the default profile).")
    ] = None,
    sandbox: Annotated[
        Path | None,
        typer.Option(
            envvar="BATCHDROP_SANDBOX",
            help='A running sandbox\'s endpoints JSON (make demo ARGS="--keep --endpoints PATH").',
        ),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    ctx.obj = Options(sandbox=sandbox, stack=stack, region=region, profile=profile)


app.command()(status.status)
app.command()(views.file)
app.command()(views.batch)
app.command()(views.results)
app.command()(export.export)
app.command()(actions.flush)
app.command()(actions.retry)
app.command()(actions.redrive)
app.command()(actions.backfill)
app.command()(configure.setup)
app.command()(health.doctor)
app.command()(reprocess.reprocess)
app.command()(waiting.wait)
app.command("register-webhook")(webhooks.register_webhook)
app.add_typer(routes.app, name="routes")
app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)(actions.demo)


def main() -> None:
    # The pipeline code logs for CloudWatch (JSON on stdout); an operator wants only the command's output.
    logger.setLevel(logging.WARNING)
    app()
