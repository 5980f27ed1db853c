"""Routes changed without a redeploy: the State table's routes item, read through Powertools Parameters.

``batchdrop routes apply`` validates a routes file with the whole pydantic model (the deployment's other
settings plus the new routes: every rule of a synth holds) and writes the routes, as the model dumps
them, into one State item (``tables.STATE_ROUTES_KEY``). One item, not one per route: the State table
has a partition key alone, and a change must be atomic, since the model's rules (distinct names,
prefixes that do not overlap) hold for the set, not for each route. The document is stored compressed
(zlib, a Binary attribute): an item takes 400 KB, and extraction schemas shrink five to ten times, so a
few MB of routes fit, against the 3,000 bytes ``BATCHDROP_SETTINGS`` may take for all settings.

A function reads the item back here, without pydantic (``runconfig.read_routes``), at most every
``routesCacheSeconds``; when it holds routes they replace the deployment's, and when there is no item
the routes of ``BATCHDROP_SETTINGS`` (cdk.json at synth) apply, as before there was one.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.parameters.base import BaseProvider

from batchdrop_core.runconfig import ConfigError, RunRoute, read_routes
from batchdrop_core.tables import STATE_ROUTES_KEY

VALUE_ATTRIBUTE = "value"
SOURCE = f"the State table's {STATE_ROUTES_KEY} item"


class RoutesProvider(BaseProvider):
    """Powertools Parameters over the routes item, through the function's own DynamoDB client. An absent
    item is cached too (as ""), so a deployment with no applied routes costs one GetItem a cache period,
    not one per use."""

    def __init__(self, client: Any, table_name: str) -> None:
        super().__init__(client=client)
        self._ddb = client
        self._table = table_name

    def _get(self, name: str, **sdk_options: Any) -> str:
        item = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": name}}).get("Item")
        return document_of(item) if item else ""

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError("the routes are one item")


@dataclass(frozen=True)
class LiveRoutes:
    """The routes of the State table's item, as a function reads them."""

    routes: tuple[RunRoute, ...]
    digest: str
    applied_at: str
    # Names of routes removed by an apply (and not applied again): their batches at Extend are still
    # polled by the reconciler, and their queued files still counted.
    retired: tuple[str, ...] = ()


def parse(raw: str) -> LiveRoutes | None:
    """The item's value read back; None for no item."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{SOURCE} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{SOURCE} is not a JSON object")
    retired = data.get("retired") or []
    if not isinstance(retired, list) or not all(isinstance(name, str) for name in retired):
        raise ConfigError(f"{SOURCE}: retired must be a list of route names")
    routes = read_routes(data.get("routes"), SOURCE)
    return LiveRoutes(routes, str(data.get("digest")), str(data.get("at")), tuple(retired))


def digest(routes: list[dict[str, Any]]) -> str:
    """A short digest of a routes list (as the model dumps it): which version of the routes is in effect."""
    text = json.dumps(routes, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def item(routes: list[dict[str, Any]], at: str, retired: list[str] | None = None) -> dict[str, Any]:
    """The State item holding ``routes`` (validated), in DynamoDB's typed form: the document compressed."""
    document = {"digest": digest(routes), "at": at, "routes": routes, "retired": sorted(retired or [])}
    value = zlib.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"), 9)
    return {"pk": {"S": STATE_ROUTES_KEY}, VALUE_ATTRIBUTE: {"B": value}}


def document_of(item: dict[str, Any]) -> str:
    """The JSON document an item holds (compressed as ``item`` writes it, or plain text)."""
    value = item[VALUE_ATTRIBUTE]
    if "B" in value:
        try:
            return zlib.decompress(value["B"]).decode("utf-8")
        except (zlib.error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{SOURCE} cannot be decompressed: {exc}") from None
    return str(value.get("S", ""))
