"""Patches that take per-request costs out of moto server which grow with the data it holds, or which it
repeats for no reason. ``sandbox.moto_server`` imports this module; each patch keeps moto's results
(``tests/unit/test_moto_speed.py`` compares them with moto's own code) and says why it exists.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
import time
from collections.abc import Iterator
from typing import Any

import moto.backends as moto_backends
import moto.dynamodb.models as ddb_models
import moto.dynamodb.models.table as ddb_table_module
import moto.sqs.models as sqs_models
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.sqs.exceptions import ReceiptHandleIsInvalid

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


# -- DynamoDB: no defensive copies of items that nothing changes ------------------------------------------
# moto deep-copies every item a Query or Scan returns before projecting and serializing it (which build new
# objects and change nothing), and every item an UpdateItem touches, for a stream record (our tables have
# no streams). For items with a history list that is most of the request's CPU: a claim reads 1,000 items,
# each flush counts a shard's QUEUED files (moto builds, and copied, the whole result to count it). While
# one of those calls runs in this thread, ``copy.deepcopy`` in moto's table and backend modules hands the
# object back as it is; everywhere else it copies as before.
_share_items = threading.local()


class _CopyModule:
    """Stands in for the ``copy`` module inside moto's DynamoDB model modules."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if getattr(_share_items, "on", False) else copy.deepcopy(value, memo)


@contextlib.contextmanager
def _sharing_items() -> Iterator[None]:
    _share_items.on = True
    try:
        yield
    finally:
        _share_items.on = False


_patch(ddb_table_module, "copy", _CopyModule())
_patch(ddb_models, "copy", _CopyModule())


def _scan(self: Table, *args: Any, **kwargs: Any) -> Any:
    with _sharing_items():
        return _moto_scan(self, *args, **kwargs)


def _update_item(self: ddb_models.DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Any:
    if self.get_table(table_name).stream_shard is not None:
        return _moto_update_item(self, table_name, *args, **kwargs)
    with _sharing_items():
        return _moto_update_item(self, table_name, *args, **kwargs)


_moto_scan = _patch(Table, "scan", _scan)
_moto_update_item = _patch(ddb_models.DynamoDBBackend, "update_item", _update_item)


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
        partitions = list(self.items.values())  # one step under the GIL, while writers go on
        every = [i for p in partitions for i in list(p.values())] if self.range_key_attr else partitions
        name, expected = conditions[0]
        if expected.type == "S":  # one string compare per item first: this loop runs over the whole table
            text = expected.value
            every = [i for i in every if (v := i.attrs.get(name)) is not None and v.value == text]
        items = [i for i in every if all(_may_match(i.attrs.get(n), e) for n, e in conditions)]
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    candidates = _partition_candidates(self, hash_key, index_name, kwargs.get("hash_key_conditions"))
    with _sharing_items():
        if candidates is None:
            return _moto_query(self, hash_key, *args, **kwargs)
        _query_scope.candidates = (self, candidates)
        try:
            return _moto_query(self, hash_key, *args, **kwargs)
        finally:
            _query_scope.candidates = None


_moto_all_items = _patch(Table, "all_items", _all_items)
_moto_query = _patch(Table, "query", _query)


# -- SQS DeleteMessage: find the message by its receipt handle -----------------------------------------------
# moto finds the message to delete by asking every message of the queue whether it ever had this receipt
# handle (building a list of its handles each time), twice: O(queue) per deleted message, so draining a
# queue of n messages costs O(n^2) - seconds per DeleteMessageBatch on a 3,000-message arrivals queue.
# Here every handle moto hands out is remembered with its message; a delete looks it up, checks that the
# message is still in this queue (an identity scan in C) and removes it as moto does, but in place and
# under the lock SendMessage appends under: moto replaced the queue's list with a filtered copy, which
# would drop a message a concurrent SendMessage (an S3 notification, say) appended meanwhile.
_by_receipt_handle: dict[str, sqs_models.Message] = {}


def _mark_received(self: sqs_models.Message, visibility_timeout: int | None = None) -> None:
    _moto_mark_received(self, visibility_timeout)
    _by_receipt_handle[self.receipt_handle] = self  # type: ignore[index]


def _delete_message(self: sqs_models.Queue, receipt_handle: str) -> None:
    if receipt_handle in self.deleted_messages:
        return  # already deleted: moto accepts a second delete
    message = _by_receipt_handle.get(receipt_handle)
    if message is None or not any(m is message for m in self._messages):
        raise ReceiptHandleIsInvalid()
    with self._messages_lock:  # in place, under the lock SendMessage appends under (see above)
        self._messages.remove(message)
    self.pending_messages.discard(message)
    self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
    for handle in message.all_receipt_handles:
        _by_receipt_handle.pop(handle, None)  # type: ignore[arg-type]


_moto_mark_received = _patch(sqs_models.Message, "mark_received", _mark_received)
_patch(sqs_models.Queue, "delete_message", _delete_message)


# -- SQS long polling on a FIFO queue: wait while nothing can be delivered -----------------------------------
# A long poll (WaitTimeSeconds > 0) that finds nothing waits on the queue until ``messages`` (any visible
# message) is non-empty. On a FIFO queue a visible message whose group has messages in flight cannot be
# delivered, yet it ends the wait at once: every idle poller of the flush queue would spin at 100% CPU
# while one route's flush request is being handled. Here a FIFO queue waits until a message moto's receive
# would deliver is visible: one of a group without messages in flight, or an in-flight one whose
# visibility timed out (new messages and the 1 s re-check wake it as before).
def _wait_for_messages(self: sqs_models.Queue, timeout: int) -> None:
    if not self.fifo_queue:
        return _moto_wait_for_messages(self, timeout)

    def deliverable() -> bool:  # what moto's receive loop would take (a visible in-flight one timed out)
        pending = self.pending_messages
        busy = self.pending_message_groups
        return any(m in pending or m.group_id not in busy for m in self.messages)

    with self._messages_lock:
        self._messages_lock.wait_for(deliverable, timeout=timeout)
    return None


_moto_wait_for_messages = _patch(sqs_models.Queue, "wait_for_messages", _wait_for_messages)


# -- SQS receives of one queue take turns ------------------------------------------------------------------
# moto's ReceiveMessage notes the FIFO groups with messages in flight when it starts, then scans (and, in a
# long poll, waits and scans again) without a lock. Two long polls waiting on one FIFO queue both wake for
# a new message; the second still believes the group is free and takes the group's next message while
# the first is in flight, which SQS never does (seen: two flush requests of one route handled at once).
# Here each scan is one short receive of moto's (which notes the busy groups afresh), one scan of a queue
# at a time; a long poll waits between scans on the queue, without holding the turn.
_receive_locks_guard = threading.Lock()


def _receive_message(
    self: sqs_models.SQSBackend,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> Any:
    queue = self.get_queue(queue_name)
    with _receive_locks_guard:
        turn = queue.__dict__.setdefault("_sandbox_receive_lock", threading.Lock())
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    while True:
        with turn:
            received = _moto_receive_message(
                self, queue_name, count, 0, visibility_timeout, message_attribute_names
            )
        remaining = deadline - time.monotonic()
        if received or remaining <= 0:
            return received
        queue.wait_for_messages(min(1.0, remaining))  # type: ignore[arg-type]


_moto_receive_message = _patch(sqs_models.SQSBackend, "receive_message", _receive_message)


# -- DynamoDB UpdateItem: parse each update expression once --------------------------------------------------
# moto tokenizes and parses the UpdateExpression twice per UpdateItem (to check its placeholders, then to
# apply it) with a pure-Python parser: a sixth of the request. The pipeline sends a handful of distinct
# expressions (values travel as placeholders), so parsed trees are kept by their text. A parsed tree is only
# read (find_clauses) or deep-copied (the validator works on its own copy), never changed.
_parsed_update_expressions = functools.lru_cache(maxsize=1024)(
    lambda expression: _moto_parse_update_expression(expression)
)
_moto_parse_update_expression = _patch(
    UpdateExpressionParser, "make", staticmethod(lambda expression: _parsed_update_expressions(expression))
)
