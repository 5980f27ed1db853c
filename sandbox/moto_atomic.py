"""DynamoDB writes in moto server are atomic, as DynamoDB's are.

moto server answers requests on several threads and its DynamoDB backend takes no lock, so two
conditional updates of one item at the same moment can both pass their condition: a lost update that
DynamoDB never allows (every write to an item is atomic, and a condition is checked against the item as
the write finds it). The pipeline relies on that everywhere (claims, leases, the request budget's
schedule), so the sandbox's moto runs one write request at a time: the lock covers moto's whole request
handler, which reads the item's old image (for ReturnValues) before the backend writes it.
``sandbox.moto_server`` applies it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.responses import DynamoHandler

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_lock = threading.RLock()


def _atomic(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return write(*args, **kwargs)

    return locked


def apply() -> None:
    for name in _WRITES:
        setattr(DynamoHandler, name, _atomic(getattr(DynamoHandler, name)))
