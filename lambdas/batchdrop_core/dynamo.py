"""Small helpers over the low-level DynamoDB client: plain Python values in, plain values out."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo_value(v) for v in value]
    return value


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo_value(v) for v in value]
    return value


def serialize(value: Any) -> dict[str, Any]:
    return _serializer.serialize(_to_dynamo_value(value))


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item from plain values; ``None`` values are left out."""
    return {k: serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo_value(_deserializer.deserialize(v)) for k, v in item.items()}


class UpdateBuilder:
    """Builds an UpdateExpression with placeholders, so attribute names never clash with reserved words."""

    def __init__(self) -> None:
        self._set: list[str] = []
        self._remove: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, key: str, value: Any) -> str:
        placeholder = f":{key}"
        self.values[placeholder] = serialize(value)
        return placeholder

    def set(self, attribute: str, value: Any) -> UpdateBuilder:
        if value is None:
            return self.remove(attribute)
        self._set.append(f"{self.name(attribute)} = {self.value(attribute, value)}")
        return self

    def set_if_absent(self, attribute: str, value: Any) -> UpdateBuilder:
        n = self.name(attribute)
        self._set.append(f"{n} = if_not_exists({n}, {self.value(attribute, value)})")
        return self

    def add_number(self, attribute: str, amount: int) -> UpdateBuilder:
        n = self.name(attribute)
        self._set.append(
            f"{n} = if_not_exists({n}, {self.value('zero', 0)}) + {self.value(attribute, amount)}"
        )
        return self

    def append(self, attribute: str, entries: list[Any]) -> UpdateBuilder:
        n = self.name(attribute)
        empty = self.value("emptyList", [])
        self._set.append(f"{n} = list_append(if_not_exists({n}, {empty}), {self.value(attribute, entries)})")
        return self

    def remove(self, attribute: str) -> UpdateBuilder:
        self._remove.append(self.name(attribute))
        return self

    def expression(self) -> str:
        parts = []
        if self._set:
            parts.append("SET " + ", ".join(self._set))
        if self._remove:
            parts.append("REMOVE " + ", ".join(self._remove))
        return " ".join(parts)

    def kwargs(self, condition: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "UpdateExpression": self.expression(),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            kwargs["ExpressionAttributeValues"] = self.values
        if condition:
            kwargs["ConditionExpression"] = condition
        return kwargs


def scan_items(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Scan, as DynamoDB returns it (typed attribute values), following LastEvaluatedKey."""
    while True:
        page = client.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def scan_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Scan, as plain values."""
    return (from_item(item) for item in scan_items(client, **kwargs))


def index_query(
    table: str, index: str, partition: tuple[str, Any], sort: tuple[str, str, Any] | None = None
) -> dict[str, Any]:
    """Query arguments for one partition of an index: ``partition`` is (attribute, value); ``sort``, when
    given with a value that is not None, (attribute, operator, value) narrows the sort key."""
    name, value = partition
    kwargs: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": f"{name} = :partition",
        "ExpressionAttributeValues": {":partition": serialize(value)},
    }
    if sort is not None and sort[2] is not None:
        kwargs["KeyConditionExpression"] += f" AND {sort[0]} {sort[1]} :sort"
        kwargs["ExpressionAttributeValues"][":sort"] = serialize(sort[2])
    return kwargs


def count_query(client: Any, up_to: int | None = None, **kwargs: Any) -> int:
    """How many items a Query matches (``Select=COUNT``, page after page), or a little more than ``up_to``
    once that many are counted: a count costs the read units of the items it passes over."""
    count = 0
    kwargs["Select"] = "COUNT"
    while up_to is None or count < up_to:
        page = client.query(**kwargs)
        count += page.get("Count", 0)
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return count


def query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Query, following LastEvaluatedKey; stops early when ``Limit`` items were read."""
    limit = kwargs.get("Limit")
    seen = 0
    while True:
        page = client.query(**kwargs)
        for item in page.get("Items", []):
            yield from_item(item)
            seen += 1
        last = page.get("LastEvaluatedKey")
        if not last or (limit is not None and seen >= limit):
            return
        kwargs["ExclusiveStartKey"] = last
        if limit is not None:
            kwargs["Limit"] = limit - seen


def conditional_write(operation: Callable[..., Any], **kwargs: Any) -> bool:
    """Run a conditional PutItem/UpdateItem; False (not an error) when its condition does not hold."""
    try:
        operation(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
