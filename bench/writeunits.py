"""DynamoDB write units of a run, by DynamoDB's billing rules, from the writes the handlers made.

moto answers ``ReturnConsumedCapacity`` with constants, so the units are worked out here: each item is
followed from its writes (PutItem items, UpdateItem SET/REMOVE clauses as ``batchdrop_core.dynamo``'s
UpdateBuilder writes them, ``ALL_NEW`` replies, which are exact), and each write is charged

- for the item: ceil(size / 1 KB) of the larger of the item before and after the write (at least 1);
- for each global secondary index: an entry added or removed costs one write of the entry's size, an
  entry whose index key changed costs two (delete and put), and an entry whose projected attributes
  changed costs one; keys-only entries change only with their keys;
- a failed conditional write: the item's size, as if it had been written (DynamoDB charges it).

Item sizes follow DynamoDB's rules (attribute names plus values) closely enough for rounding to 1 KB; an
index entry adds the table's and the index's keys plus 100 bytes of overhead.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from typing import Any

from batchdrop_core.tables import ALL_TABLES, IndexSpec, TableSpec

_SPECS = {spec.construct_id.lower(): spec for spec in ALL_TABLES}
_CLAUSE = re.compile(r"^(#\w+) = (.+)$")
_INDEX_OVERHEAD = 100


def value_size(value: dict[str, Any]) -> int:
    """Size in bytes of an attribute value in DynamoDB's wire format ({"S": ...} etc.)."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return len(inner.strip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(v)) for v in inner)
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def _units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def apply_update(item: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The item after an UpdateItem of the shapes UpdateBuilder writes (a copy; ``item`` is unchanged)."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    expression = params.get("UpdateExpression", "")
    after = dict(item)
    set_part, _, remove_part = expression.partition("REMOVE ")
    set_part = set_part.removeprefix("SET ").strip()
    for clause in _split_top_level(set_part):
        match = _CLAUSE.match(clause)
        if not match:
            continue
        attribute, right = names[match.group(1)], match.group(2)
        placeholders = re.findall(r":\w+", right)
        if right.startswith("list_append("):
            existing = after.get(attribute, {"L": []})["L"]
            after[attribute] = {"L": [*existing, *values[placeholders[-1]]["L"]]}
        elif right.startswith("if_not_exists(") and "+" in right:
            base = int(after.get(attribute, values[placeholders[0]])["N"])
            after[attribute] = {"N": str(base + int(values[placeholders[-1]]["N"]))}
        elif right.startswith("if_not_exists("):
            after.setdefault(attribute, values[placeholders[-1]])
        else:
            after[attribute] = values[placeholders[0]]
    for name in _split_top_level(remove_part):
        after.pop(names.get(name, name), None)
    return after


def _entry(spec: TableSpec, index: IndexSpec, item: dict[str, Any]) -> tuple[tuple[Any, ...], int] | None:
    """(the index keys, the entry's size) of an item in an index, or None when it is not in it."""
    keys = [index.partition_key, *([index.sort_key] if index.sort_key else [])]
    if any(k not in item for k in keys):
        return None
    table_keys = [spec.partition_key, *([spec.sort_key] if spec.sort_key else [])]
    if index.projection is None:
        projected = dict(item)
    else:
        projected = {k: item[k] for k in {*keys, *table_keys, *index.projection} if k in item}
    key_values = tuple(str(item[k]) for k in keys)
    return key_values, item_size(projected) + _INDEX_OVERHEAD


def _projected(index: IndexSpec, item: dict[str, Any]) -> Any:
    if index.projection is None:
        return sorted((k, str(v)) for k, v in item.items())
    return sorted((k, str(item.get(k))) for k in index.projection)


class WriteUnitMeter:
    """Follows the items of the tables in ``batchdrop_core.tables`` and charges every write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self.units: Counter[tuple[str, str]] = Counter()  # (who, table) → write units
        self.writes: Counter[tuple[str, str]] = Counter()  # (who, table) → successful writes
        self.failed_conditions: Counter[tuple[str, str]] = Counter()
        self.item_sizes: dict[str, list[int]] = {}  # table → size after each successful write

    @staticmethod
    def _table(params: dict[str, Any]) -> str:
        return str(params.get("TableName", "")).split("-", 1)[-1]

    def record(self, who: str, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        table = self._table(params)
        spec = _SPECS.get(table)
        if spec is None or operation not in ("PutItem", "UpdateItem", "DeleteItem"):
            return
        key_names = [spec.partition_key, *([spec.sort_key] if spec.sort_key else [])]
        source = params.get("Item") or params.get("Key") or {}
        key = (table, repr([source.get(k) for k in key_names]))
        with self._lock:
            before = self._items.get(key, {})
            error = (parsed.get("Error") or {}).get("Code")
            if error == "ConditionalCheckFailedException":
                self.units[(who, table)] += _units(item_size(before))
                self.failed_conditions[(who, table)] += 1
                return
            if error:
                return
            if operation == "PutItem":
                after = dict(params["Item"])
            elif operation == "DeleteItem":
                after = {}
            elif "Attributes" in parsed and params.get("ReturnValues") == "ALL_NEW":
                after = dict(parsed["Attributes"])
            else:
                after = apply_update({**before, **dict(params["Key"])}, params)
            units = _units(max(item_size(before), item_size(after)))
            for index in spec.indexes:
                old, new = _entry(spec, index, before), _entry(spec, index, after)
                if old and new and old[0] != new[0]:
                    units += _units(old[1]) + _units(new[1])
                elif old and not new:
                    units += _units(old[1])
                elif new and (not old or _projected(index, before) != _projected(index, after)):
                    units += _units(new[1])
            self.units[(who, table)] += units
            self.writes[(who, table)] += 1
            if after:
                self._items[key] = after
                self.item_sizes.setdefault(table, []).append(item_size(after))
            else:
                self._items.pop(key, None)

    def final_sizes(self, table: str) -> list[int]:
        """The size of each item of ``table`` as the run left it."""
        with self._lock:
            return [item_size(item) for (t, _), item in self._items.items() if t == table]
