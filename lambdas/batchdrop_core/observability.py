"""One place for logging and metrics, and for the names the stacks' alarms refer to."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = "batchdrop"  # the default deployment's service: the metrics' one dimension, the logs' "service"
METRICS_NAMESPACE = "Batchdrop"
SERVICE_ENV = "POWERTOOLS_SERVICE_NAME"  # set per deployment by the stacks (stacks.constants.service_name)


class MetricName:
    """Custom metrics (EMF, namespace ``Batchdrop``, dimension ``service=`` the deployment's service)."""

    FILES_RECEIVED = "FilesReceived"
    FILES_REJECTED = "FilesRejected"
    DUPLICATE_NOTIFICATIONS = "DuplicateNotifications"
    BATCHES_SUBMITTED = "BatchesSubmitted"
    FILES_SUBMITTED = "FilesSubmitted"
    SUBMIT_ERRORS = "SubmitErrors"
    EXTEND_RATE_LIMITED = "ExtendRateLimited"
    EXTEND_ERRORS = "ExtendErrors"
    ROUTE_BLOCKED = "RouteBlocked"
    WEBHOOKS_ACCEPTED = "WebhooksAccepted"
    WEBHOOKS_REJECTED = "WebhooksRejected"
    RESULTS_RECORDED = "ResultsRecorded"
    RUNS_FAILED = "RunsFailed"
    FILES_REQUEUED = "FilesRequeued"
    BATCHES_COMPLETED = "BatchesCompleted"
    CREDITS_USED = "CreditsUsed"  # Extend credits of finished batches, as Extend reported them
    OLDEST_QUEUED_AGE = "OldestQueuedAgeSeconds"
    OVERDUE_BATCHES = "OverdueBatches"
    STUCK_FILES = "StuckFiles"
    # A batch event for a batch that is not batchdrop's (another tool in the workspace): counted, dropped.
    FOREIGN_BATCHES = "ForeignBatches"
    # A batch of a submission batchdrop had abandoned turned up at Extend: a duplicate submission (alarm).
    LATE_DUPLICATE_BATCHES = "LateDuplicateBatches"


service = os.environ.get(SERVICE_ENV) or SERVICE
logger = Logger(service=service)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=service)
