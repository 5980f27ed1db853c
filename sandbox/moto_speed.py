"""Patches that take per-request costs out of moto server which grow with the data it holds, or which it
repeats for no reason. ``sandbox.moto_server`` imports this module; each patch keeps moto's results
(``tests/unit/test_moto_speed.py`` compares them with moto's own code) and says why it exists.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

import moto.backends as moto_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

_PATCHES: list[tuple[Any, str, Any, Any]] = []  # (owner, attribute, moto's, ours)


def _patch(owner: Any, name: str, replacement: Any) -> Any:
    """Replace ``owner.name``; returns moto's original, which stays reachable for ``moto_as_shipped``."""
    original = getattr(owner, name)
    _PATCHES.append((owner, name, original, replacement))
    setattr(owner, name, replacement)
    return original


@contextlib.contextmanager
def moto_as_shipped() -> Iterator[None]:
    """moto without these patches, for tests that compare answers (not thread-safe: tests only)."""
    for owner, name, original, _ in _PATCHES:
        setattr(owner, name, original)
    try:
        yield
    finally:
        for owner, name, _, replacement in _PATCHES:
            setattr(owner, name, replacement)


# Dispatching a request asks whether the host is one of moto's service packages, and moto answers by
# listing its package directory and stat-ing every entry (~200) - on every request, while holding the
# server's one dispatch lock. The directory does not change while the server runs: list it once.
_moto_list_of_modules = moto_backends.list_of_moto_modules
_patch(moto_backends, "list_of_moto_modules", functools.cache(lambda: tuple(_moto_list_of_modules())))


# -- DynamoDB Query: only the items of the partition asked for ----------------------------------------------
# moto answers every Query (on the table or a GSI) by sorting the whole table (``Table.all_items``), then
# checking each item against the key condition: O(table log table) for the submitter's per-shard COUNT and
# Limit=1 queries, on a Files table that grows by every file. Here ``all_items`` hands moto's query only
# the items that can match the partition key (a superset of what moto's own checks keep, in moto's
# order); moto then applies every check, sort, page and projection itself, so results are moto's.
_query_scope = threading.local()


def _all_items(self: Table) -> list[Item]:
    scope = getattr(_query_scope, "candidates", None)
    if scope is not None and scope[0] is self:
        return scope[1]
    return _moto_all_items(self)


def _may_match(value: DynamoType | None, expected: DynamoType) -> bool:
    if value is None:
        return False
    if expected.type == "S":  # the common case, without moto's per-comparison value casts
        return value.type == "S" and value.value == expected.value
    return value == expected


def _partition_candidates(self: Table, hash_key: Any, index_name: Any, conditions: Any) -> list[Item] | None:
    if not index_name:
        if hash_key is None:
            return None
        partition = self.items.get(hash_key)  # a defaultdict: get() does not create the partition
        if partition is None:
            return []
        items = list(partition.values()) if self.range_key_attr else [partition]
    else:
        if not conditions:
            return None
        items = [
            item
            for partition in self.items.values()
            for item in (partition.values() if self.range_key_attr else [partition])
            if all(_may_match(item.attrs.get(name), expected) for name, expected in conditions)
        ]
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    candidates = _partition_candidates(self, hash_key, index_name, kwargs.get("hash_key_conditions"))
    if candidates is None:
        return _moto_query(self, hash_key, *args, **kwargs)
    _query_scope.candidates = (self, candidates)
    try:
        return _moto_query(self, hash_key, *args, **kwargs)
    finally:
        _query_scope.candidates = None


_moto_all_items = _patch(Table, "all_items", _all_items)
_moto_query = _patch(Table, "query", _query)
