#!/usr/bin/env python3
"""CDK entry point: `cdk synth|deploy` (via cdk.json) or `make synth` (CDK_OUTDIR=cdk.out)."""

import sys

from batchdrop_core.config import ConfigError
from stacks.batchdrop_app import build_app
from stacks.packaging import BundlingError


def main() -> None:
    try:
        app = build_app()
        app.synth()
    except (ConfigError, BundlingError) as exc:
        sys.exit(f"batchdrop: {exc}")


if __name__ == "__main__":
    main()
