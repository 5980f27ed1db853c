"""The public webhook endpoint: regional REST API, ``POST /webhooks/extend`` -> webhook Lambda (proxy)."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks import constants
from stacks.nag import acknowledge


class WebhookApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=constants.LOG_RETENTION)
        self.api = self._build_api()
        self.method = self._build_route(handler)
        self.url = self.api.url_for_path("/" + "/".join(constants.WEBHOOK_PATH))
        self._acknowledge_findings()

    def _build_api(self) -> apigateway.RestApi:
        return apigateway.RestApi(
            self,
            "Api",
            description="Receives Extend's signed batch webhooks",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # Execution logs need the account-level API Gateway logging role; CDK creates and retains it.
            cloud_watch_role=True,
            deploy_options=apigateway.StageOptions(
                stage_name=constants.API_STAGE,
                throttling_rate_limit=constants.API_RATE_LIMIT,
                throttling_burst_limit=constants.API_BURST_LIMIT,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                # ERROR, without data tracing: request bodies and signature headers stay out of the logs.
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )

    def _build_route(self, handler: lambda_.IFunction) -> apigateway.Method:
        resource = self.api.root
        for part in constants.WEBHOOK_PATH:
            resource = resource.add_resource(part)
        return resource.add_method(
            "POST", apigateway.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)
        )

    def _acknowledge_findings(self) -> None:
        hmac_reason = (
            "Extend cannot send IAM, Cognito or API-key credentials; every request is authenticated by its "
            "HMAC signature (x-extend-request-signature over timestamp and raw body) in the webhook Lambda."
        )
        acknowledge(self.method, "APIG4", hmac_reason)
        acknowledge(self.method, "COG4", hmac_reason)
        acknowledge(
            self.api,
            "APIG2",
            "The webhook Lambda validates the signature and body and answers 401/400 with a reason; a "
            "gateway validator would reject unsigned requests before they are counted as WebhooksRejected.",
        )
        acknowledge(
            self.api,
            "APIG3",
            f"No WAF: one POST route, HMAC-authenticated, behind stage throttling "
            f"({constants.API_RATE_LIMIT} rps, burst {constants.API_BURST_LIMIT}); attach a web ACL to the "
            "stage if your organisation requires one.",
        )
        acknowledge(
            self.api,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "AWS's own policy for the account-level API Gateway logging role, required for execution logs.",
        )
