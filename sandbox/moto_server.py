"""Run moto's server, with two performance fixes for queues that hold thousands of messages.

moto 5 reads a queue's attributes on every SendMessage and for every received message; each read counts
the queue's messages, asking each one for the time through a slow datetime round trip. With the
3,000-message arrivals queue of a burst, a send or receive took tens of milliseconds to a second.
The fixes: take "now" from ``time.time()`` (what moto computes, without the datetime detour) and read
the retention period directly. Behaviour is unchanged. ``sandbox.aws.MotoServer`` runs this module.
"""

from __future__ import annotations

import time
from datetime import datetime

import moto.sqs.models as sqs_models
from moto.core.utils import unix_time
from moto.server import main

_moto_unix_time_millis = sqs_models.unix_time_millis


def _unix_time_millis(dt: datetime | None = None) -> float:
    return time.time() * 1000.0 if dt is None else _moto_unix_time_millis(dt)


def _retained(self: sqs_models.SQSBackend, queue_name: str, message: sqs_models.Message) -> bool:
    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000  # type: ignore[operator]
    return retain_until > unix_time()


sqs_models.unix_time_millis = _unix_time_millis
sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
