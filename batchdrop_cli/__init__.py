"""The `batchdrop` operator CLI (needs the `cli` extra: typer, rich). The Lambdas never import it."""

from batchdrop_cli.app import app, main

__all__ = ["app", "main"]
