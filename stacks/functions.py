"""The five pipeline functions, each with exactly the permissions and resource names its handler uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batchdrop_core.config import SETTINGS_ENV, ConfigError, Resources, Settings
from batchdrop_core.observability import METRICS_NAMESPACE, SERVICE_ENV
from batchdrop_core.tables import BATCHES, FILES, STATE, STATE_LEADING_KEYS, STATE_ROUTES_KEY, TableSpec
from stacks import constants
from stacks.nag import acknowledge
from stacks.packaging import lambda_code
from stacks.pipeline_function import PipelineFunction
from stacks.queues import QueueWithDlq
from stacks.tables import index_arns

if TYPE_CHECKING:
    from stacks.stateful_stack import StatefulStack

_READ_WRITE_ITEM = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
_QUERY_UPDATE = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"]


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: StatefulStack,
        flush: QueueWithDlq,
        results: QueueWithDlq,
        settings: Settings,
        service: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._data = data
        self._tables = data.tables
        self._flush = flush.queue
        self._results = results.queue
        self._settings = settings
        self._code = lambda_code(self)
        self._common_env = _common_env(settings, service)
        self.intake = self._build_intake()
        self.submitter = self._build_submitter()
        self.webhook = self._build_webhook()
        self.results = self._build_results()
        self.reconciler = self._build_reconciler()

    @property
    def by_name(self) -> dict[str, PipelineFunction]:
        functions = (self.intake, self.submitter, self.webhook, self.results, self.reconciler)
        return {fn.node.id: fn for fn in functions}

    def _build_intake(self) -> PipelineFunction:
        fn = self._function(
            constants.INTAKE,
            Resources(
                files_table=self._tables.files.table_name,
                state_table=self._tables.state.table_name,  # the routes applied there
                drop_bucket=self._data.storage.drop_bucket.bucket_name,
                flush_queue_url=self._flush.queue_url,
            ),
        )
        self._allow_table(fn, self._tables.files, FILES, _READ_WRITE_ITEM)
        self._allow_read_routes(fn)
        self._allow_read_dropped_files(fn)  # HeadObject: size, user metadata, version id
        # Without ListBucket, HeadObject answers 403 for a missing object instead of 404, and intake could
        # not tell "deleted before we read it" (REJECTED: OBJECT_NOT_FOUND) from a permission problem.
        fn.allow(
            ["s3:ListBucket"],
            [self._data.drop_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{route.prefix}*" for route in self._settings.routes]}},
        )
        self._allow_send(fn, self._flush)
        fn.function.add_event_source(
            sources.SqsEventSource(
                self._data.ingress.arrivals.queue,
                batch_size=constants.INTAKE_BATCH_SIZE,
                max_batching_window=constants.INTAKE_BATCHING_WINDOW,
                max_concurrency=constants.INTAKE_MAX_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )
        return fn

    def _build_submitter(self) -> PipelineFunction:
        fn = self._function(
            constants.SUBMITTER,
            Resources(
                files_table=self._tables.files.table_name,
                batches_table=self._tables.batches.table_name,
                state_table=self._tables.state.table_name,
                drop_bucket=self._data.storage.drop_bucket.bucket_name,
                flush_queue_url=self._flush.queue_url,
                topic_arn=self._data.alerts.topic.topic_arn,
                api_key_secret=self._data.secrets.api_key.secret_arn,
            ),
        )
        self._allow_table(fn, self._tables.files, FILES, [*_QUERY_UPDATE, "dynamodb:BatchGetItem"])
        self._allow_table(fn, self._tables.batches, BATCHES, [*_QUERY_UPDATE, "dynamodb:PutItem"])
        self._allow_table(fn, self._tables.state, STATE, _READ_WRITE_ITEM)
        self._allow_read_dropped_files(fn)  # presigned URLs (url mode) or reading the bytes (upload mode)
        self._allow_secret(fn, self._data.secrets.api_key)
        self._allow_publish(fn)
        self._allow_send(fn, self._flush)  # "more full batches remain": continue in a new invocation
        # FIFO, group = route: one submitter per route at a time. No batching window on FIFO queues.
        fn.function.add_event_source(
            sources.SqsEventSource(
                self._flush, batch_size=constants.SUBMITTER_BATCH_SIZE, report_batch_item_failures=True
            )
        )
        return fn

    def _build_webhook(self) -> PipelineFunction:
        fn = self._function(
            constants.WEBHOOK,
            Resources(
                state_table=self._tables.state.table_name,
                results_queue_url=self._results.queue_url,
                webhook_secret=self._data.secrets.webhook_signing_secret.secret_arn,
            ),
        )
        # Its event-id items only (the function faces the internet): PutItem claims, UpdateItem confirms,
        # DeleteItem releases a claim when the enqueue fails, GetItem tells a duplicate from a pending claim.
        self._allow_table(
            fn,
            self._tables.state,
            STATE,
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            leading_keys=STATE_LEADING_KEYS["webhook"],
        )
        self._allow_secret(fn, self._data.secrets.webhook_signing_secret)
        self._allow_send(fn, self._results)
        return fn

    def _build_results(self) -> PipelineFunction:
        fn = self._function(
            constants.RESULTS,
            Resources(
                files_table=self._tables.files.table_name,
                batches_table=self._tables.batches.table_name,
                state_table=self._tables.state.table_name,
                results_bucket=self._data.storage.results_bucket.bucket_name,
                results_queue_url=self._results.queue_url,
                flush_queue_url=self._flush.queue_url,
                topic_arn=self._data.alerts.topic.topic_arn,
                api_key_secret=self._data.secrets.api_key.secret_arn,
            ),
        )
        self._allow_table(fn, self._tables.files, FILES, [*_QUERY_UPDATE, "dynamodb:BatchGetItem"])
        self._allow_table(fn, self._tables.batches, BATCHES, _QUERY_UPDATE)
        # The ledger (a finished batch gives its room back; PutItem creates it on first use) and the read
        # budget (collection only reads at Extend): not the routes, the write budget or webhook items.
        self._allow_table(
            fn,
            self._tables.state,
            STATE,
            _READ_WRITE_ITEM,
            leading_keys=STATE_LEADING_KEYS["results"],
        )
        self._allow_read_routes(fn)  # which types a late batch's id may belong to (lookup)
        self._allow_write_results(fn)
        self._allow_secret(fn, self._data.secrets.api_key)
        self._allow_publish(fn)
        self._allow_send(fn, self._results)  # continuation after a checkpoint
        self._allow_send(fn, self._flush)  # failed runs requeued for another attempt
        fn.function.add_event_source(
            sources.SqsEventSource(
                self._results,
                batch_size=constants.RESULTS_BATCH_SIZE,
                max_concurrency=constants.RESULTS_MAX_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )
        return fn

    def _build_reconciler(self) -> PipelineFunction:
        fn = self._function(
            constants.RECONCILER,
            Resources(
                files_table=self._tables.files.table_name,
                batches_table=self._tables.batches.table_name,
                state_table=self._tables.state.table_name,
                flush_queue_url=self._flush.queue_url,
                results_queue_url=self._results.queue_url,
                topic_arn=self._data.alerts.topic.topic_arn,
                api_key_secret=self._data.secrets.api_key.secret_arn,
            ),
        )
        self._allow_table(fn, self._tables.files, FILES, _QUERY_UPDATE)
        self._allow_table(fn, self._tables.batches, BATCHES, _QUERY_UPDATE)
        self._allow_table(fn, self._tables.state, STATE, _READ_WRITE_ITEM)
        self._allow_secret(fn, self._data.secrets.api_key)
        self._allow_publish(fn)
        self._allow_send(fn, self._flush)
        self._allow_send(fn, self._results)
        return fn

    def _function(self, spec: constants.FunctionSpec, resources: Resources) -> PipelineFunction:
        return PipelineFunction(self, spec, code=self._code, common_env=self._common_env, resources=resources)

    def _allow_table(
        self,
        fn: PipelineFunction,
        table: dynamodb.ITable,
        spec: TableSpec,
        actions: list[str],
        *,
        leading_keys: Sequence[str] = (),
    ) -> None:
        """``leading_keys``: only items whose partition key matches one of these (StringLike patterns)."""
        resources = [table.table_arn]
        if "dynamodb:Query" in actions:
            resources += index_arns(table, spec)
        conditions = None
        if leading_keys:
            # A Scan has no leading key, and ForAllValues holds for an empty set: it would get through.
            if "dynamodb:Scan" in actions:
                raise ValueError("dynamodb:LeadingKeys cannot limit a Scan")
            conditions = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(leading_keys)}}
        fn.allow(actions, resources, conditions)

    def _allow_read_routes(self, fn: PipelineFunction) -> None:
        """The routes item of the State table (``batchdrop routes apply``), read only, for a function
        whose role is otherwise limited to some State items (the others may touch every item)."""
        self._allow_table(
            fn, self._tables.state, STATE, ["dynamodb:GetItem"], leading_keys=(STATE_ROUTES_KEY,)
        )

    def _allow_read_dropped_files(self, fn: PipelineFunction) -> None:
        # Routed prefixes only: objects outside every route are none of the pipeline's business.
        prefixes = [route.prefix for route in self._settings.routes]
        fn.allow(
            ["s3:GetObject", "s3:GetObjectVersion"],
            [f"{self._data.drop_bucket_arn}/{prefix}*" for prefix in prefixes],
        )
        for prefix in prefixes:
            acknowledge(
                fn.role,
                f"IAM5[Resource::{self._data.drop_bucket_arn_export}/{prefix}*]",
                "Dropped object keys are unknown in advance; reads are limited to the routed prefixes.",
            )

    def _allow_write_results(self, fn: PipelineFunction) -> None:
        fn.allow(["s3:PutObject"], [f"{self._data.results_bucket_arn}/*"])
        acknowledge(
            fn.role,
            f"IAM5[Resource::{self._data.results_bucket_arn_export}/*]",
            "Result keys derive from dropped object keys; writes go only to the dedicated results bucket.",
        )

    def _allow_secret(self, fn: PipelineFunction, secret: secretsmanager.ISecret) -> None:
        fn.allow(["secretsmanager:GetSecretValue"], [secret.secret_arn])

    def _allow_publish(self, fn: PipelineFunction) -> None:
        alerts = self._data.alerts
        fn.allow(["sns:Publish"], [alerts.topic.topic_arn])
        fn.allow(["kms:GenerateDataKey", "kms:Decrypt"], [alerts.key.key_arn])  # the topic is encrypted

    def _allow_send(self, fn: PipelineFunction, queue: sqs.IQueue) -> None:
        fn.allow(["sqs:SendMessage"], [queue.queue_arn])


def _common_env(settings: Settings, service: str) -> dict[str, str]:
    settings_json = settings.to_env_json()
    if len(settings_json.encode()) > constants.MAX_SETTINGS_ENV_BYTES:
        raise ConfigError(
            f"the batchdrop settings take {len(settings_json.encode())} bytes as JSON, more than the "
            f"{constants.MAX_SETTINGS_ENV_BYTES} that fit in a Lambda environment (4 KB in all); "
            "shorten overrideConfig or use fewer routes, or put the routes in the State table with "
            "`batchdrop routes apply` (docs/deploy.md, section 7)"
        )
    return {
        SETTINGS_ENV: settings_json,
        SERVICE_ENV: service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": constants.LOG_LEVEL,
    }
