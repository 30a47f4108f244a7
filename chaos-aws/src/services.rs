//! The AWS services the wire wrapper knows: their names in rules, wire protocols, operations,
//! and how a plan's selectors are checked against them.

use std::time::Duration;

use chaos_core::advanced::LocalMatchCounter;
use chaos_core::{Call, ErrorKind, Fault, LatencyDist, Plan, Rule};

use crate::error::ConfigError;
use crate::wire::identify::{LAMBDA_ROUTES, S3_OPERATIONS};
use crate::wire::responses::{accepts_custom, custom_names};

/// An AWS service the wrapper recognises on the wire and answers in its own protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Service {
    /// Amazon DynamoDB (`awsJson1_0`, `x-amz-target: DynamoDB_20120810.*`).
    DynamoDb,
    /// AWS Lambda (`restJson1`; the operation is in the method and path).
    Lambda,
    /// Amazon SQS (`awsJson1_0`, `x-amz-target: AmazonSQS.*`).
    Sqs,
    /// Amazon SNS (`awsQuery`; the operation is the form body's `Action`).
    Sns,
    /// Amazon S3 (`restXml`; the common object and bucket operations are recognised by path).
    S3,
    /// AWS Step Functions (`awsJson1_0`, `x-amz-target: AWSStepFunctions.*`).
    StepFunctions,
    /// AWS Systems Manager, Parameter Store among it (`awsJson1_1`, `x-amz-target: AmazonSSM.*`).
    Ssm,
}

/// How a service frames requests and errors on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// JSON body, error code in `__type`; the content type names the version.
    AwsJson(&'static str),
    /// REST with JSON bodies, error code in the `x-amzn-errortype` header.
    RestJson,
    /// Form-encoded requests, `<ErrorResponse>` XML errors.
    AwsQuery(&'static str),
    /// REST with XML bodies, `<Error>` XML errors.
    RestXml,
}

impl Service {
    /// Every service, in the order the documentation lists them.
    pub const ALL: [Service; 7] = [
        Service::DynamoDb,
        Service::Lambda,
        Service::Sqs,
        Service::Sns,
        Service::S3,
        Service::StepFunctions,
        Service::Ssm,
    ];

    /// The name rules use in `match = { service = ".." }`: the service's SigV4 signing name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DynamoDb => "dynamodb",
            Self::Lambda => "lambda",
            Self::Sqs => "sqs",
            Self::Sns => "sns",
            Self::S3 => "s3",
            Self::StepFunctions => "states",
            Self::Ssm => "ssm",
        }
    }

    /// The service named `name` (its signing name, as [`name`](Self::name) gives it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|service| service.name() == name)
    }

    pub(crate) fn from_target_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "DynamoDB_20120810" => Some(Self::DynamoDb),
            "AmazonSQS" => Some(Self::Sqs),
            "AWSStepFunctions" => Some(Self::StepFunctions),
            "AmazonSSM" => Some(Self::Ssm),
            _ => None,
        }
    }

    pub(crate) const fn protocol(self) -> Protocol {
        match self {
            Self::DynamoDb | Self::Sqs | Self::StepFunctions => {
                Protocol::AwsJson("application/x-amz-json-1.0")
            }
            Self::Ssm => Protocol::AwsJson("application/x-amz-json-1.1"),
            Self::Lambda => Protocol::RestJson,
            Self::Sns => Protocol::AwsQuery("http://sns.amazonaws.com/doc/2010-03-31/"),
            Self::S3 => Protocol::RestXml,
        }
    }

    /// The operations a rule may name for this service: those the wrapper recognises on the
    /// wire (`None`: every operation is recognised, and no list is kept to check names
    /// against; SNS and SSM).
    pub fn operations(self) -> Option<&'static [&'static str]> {
        match self {
            Self::DynamoDb => Some(DYNAMODB_OPERATIONS),
            Self::Lambda => Some(LAMBDA_OPERATIONS),
            Self::S3 => Some(S3_OPERATIONS),
            Self::Sqs => Some(SQS_OPERATIONS),
            Self::StepFunctions => Some(STEP_FUNCTIONS_OPERATIONS),
            Self::Sns | Self::Ssm => None,
        }
    }
}

/// DynamoDB's operations (API version 2012-08-10).
#[rustfmt::skip]
const DYNAMODB_OPERATIONS: &[&str] = &[
    "BatchExecuteStatement", "BatchGetItem", "BatchWriteItem", "CreateBackup",
    "CreateGlobalTable", "CreateTable", "DeleteBackup", "DeleteItem", "DeleteResourcePolicy",
    "DeleteTable", "DescribeBackup", "DescribeContinuousBackups", "DescribeContributorInsights",
    "DescribeEndpoints", "DescribeExport", "DescribeGlobalTable", "DescribeGlobalTableSettings",
    "DescribeImport", "DescribeKinesisStreamingDestination", "DescribeLimits", "DescribeTable",
    "DescribeTableReplicaAutoScaling", "DescribeTimeToLive",
    "DisableKinesisStreamingDestination", "EnableKinesisStreamingDestination",
    "ExecuteStatement", "ExecuteTransaction", "ExportTableToPointInTime", "GetItem",
    "GetResourcePolicy", "ImportTable", "ListBackups", "ListContributorInsights", "ListExports",
    "ListGlobalTables", "ListImports", "ListTables", "ListTagsOfResource", "PutItem",
    "PutResourcePolicy", "Query", "RestoreTableFromBackup", "RestoreTableToPointInTime", "Scan",
    "TagResource", "TransactGetItems", "TransactWriteItems", "UntagResource",
    "UpdateContinuousBackups", "UpdateContributorInsights", "UpdateGlobalTable",
    "UpdateGlobalTableSettings", "UpdateItem", "UpdateKinesisStreamingDestination",
    "UpdateTable", "UpdateTableReplicaAutoScaling", "UpdateTimeToLive",
];

/// Lambda's operations the wrapper recognises by method and path (its REST routes).
const LAMBDA_OPERATIONS: &[&str] = &{
    let mut names = [""; LAMBDA_ROUTES.len()];
    let mut index = 0;
    while index < LAMBDA_ROUTES.len() {
        names[index] = LAMBDA_ROUTES[index].2;
        index += 1;
    }
    names
};

/// SQS's operations.
#[rustfmt::skip]
const SQS_OPERATIONS: &[&str] = &[
    "AddPermission", "CancelMessageMoveTask", "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch", "CreateQueue", "DeleteMessage", "DeleteMessageBatch",
    "DeleteQueue", "GetQueueAttributes", "GetQueueUrl", "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks", "ListQueueTags", "ListQueues", "PurgeQueue", "ReceiveMessage",
    "RemovePermission", "SendMessage", "SendMessageBatch", "SetQueueAttributes",
    "StartMessageMoveTask", "TagQueue", "UntagQueue",
];

/// Step Functions' operations.
#[rustfmt::skip]
const STEP_FUNCTIONS_OPERATIONS: &[&str] = &[
    "CreateActivity", "CreateStateMachine", "CreateStateMachineAlias", "DeleteActivity",
    "DeleteStateMachine", "DeleteStateMachineAlias", "DeleteStateMachineVersion",
    "DescribeActivity", "DescribeExecution", "DescribeMapRun", "DescribeStateMachine",
    "DescribeStateMachineAlias", "DescribeStateMachineForExecution", "GetActivityTask",
    "GetExecutionHistory", "ListActivities", "ListExecutions", "ListMapRuns",
    "ListStateMachineAliases", "ListStateMachineVersions", "ListStateMachines",
    "ListTagsForResource", "PublishStateMachineVersion", "RedriveExecution", "SendTaskFailure",
    "SendTaskHeartbeat", "SendTaskSuccess", "StartExecution", "StartSyncExecution",
    "StopExecution", "TagResource", "TestState", "UntagResource", "UpdateMapRun",
    "UpdateStateMachine", "UpdateStateMachineAlias", "ValidateStateMachineDefinition",
];

/// Checks that every rule's `service` and `operation` selectors can match a call the wrapper
/// sees: a service glob must match one of [`Service::ALL`]'s names, an operation glob one of
/// the matched services' operations (where the list is complete). Globs are matched by
/// chaos-core itself, so the check and the decisions agree.
pub fn check_plan(plan: &Plan) -> Result<(), ConfigError> {
    for (index, rule) in plan.rules.iter().enumerate() {
        let name = rule.label(index);
        let service_glob = rule.selector.service.as_deref();
        let operation_glob = rule.selector.operation.as_deref();
        if service_glob.is_none() && operation_glob.is_none() {
            check_custom_code(rule, &name, &Service::ALL)?;
            continue;
        }
        let services: Vec<Service> = Service::ALL
            .into_iter()
            .filter(|service| selects(service_glob, None, service.name(), None))
            .collect();
        if services.is_empty() {
            return Err(ConfigError::UnknownService {
                rule: name,
                service: service_glob.unwrap_or_default().to_owned(),
            });
        }
        check_custom_code(rule, &name, &services)?;
        let Some(operation) = operation_glob else {
            continue;
        };
        let mut any_list = false;
        let mut matched = false;
        for service in &services {
            match service.operations() {
                None => matched = true,
                Some(list) => {
                    any_list = true;
                    matched |= list
                        .iter()
                        .any(|op| selects(None, Some(operation), service.name(), Some(op)));
                }
            }
        }
        if any_list && !matched {
            return Err(ConfigError::UnknownOperation {
                rule: name,
                operation: operation.to_owned(),
                services: services
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// A `custom` error must be one the selected services send: every one of them when the rule
/// names its service, at least one when it selects every service.
fn check_custom_code(rule: &Rule, name: &str, services: &[Service]) -> Result<(), ConfigError> {
    let Fault::Error(ErrorKind::Custom { name: code, .. }) = &rule.fault else {
        return Ok(());
    };
    let rejecting = services.iter().find(|s| !accepts_custom(**s, code));
    let accepted_by_one = services.iter().any(|s| accepts_custom(*s, code));
    let failing = match rule.selector.service {
        Some(_) => rejecting,
        None if accepted_by_one => None,
        None => services.first(),
    };
    match failing {
        None => Ok(()),
        Some(service) => Err(ConfigError::UnknownErrorCode {
            rule: name.to_owned(),
            code: code.clone(),
            service: service.name(),
            expected: custom_names(*service),
        }),
    }
}

/// Whether a rule selecting only `service_glob` / `operation_glob` matches the call
/// (`service`, `operation`), decided by chaos-core. `operation_glob` of `Some("")` means "the
/// operation is not being checked": it is left out of the probe rule.
fn selects(
    service_glob: Option<&str>,
    operation_glob: Option<&str>,
    service: &str,
    operation: Option<&str>,
) -> bool {
    let mut rule =
        Rule::latency(LatencyDist::constant(Duration::from_millis(1))).with_probability(1.0);
    if let Some(glob) = service_glob {
        rule = rule.for_service(glob);
    }
    if let Some(glob) = operation_glob {
        rule = rule.for_operation(glob);
    }
    let Ok(probe) = Plan::new(0).with_rule(rule).compile() else {
        // A glob chaos-core rejects is reported when the plan itself is compiled.
        return true;
    };
    let call = Call::new(0, "")
        .service(service)
        .operation(operation.unwrap_or(""));
    !probe
        .evaluate(&call, Duration::ZERO, &LocalMatchCounter::new(1))
        .is_pass()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(selector: &str) -> Plan {
        Plan::from_toml_str(&format!(
            "[[rules]]\nname = \"r\"\nfault = {{ error = \"throttle\" }}\nmatch = {selector}\nprobability = 1.0\n"
        ))
        .expect("test plan parses")
    }

    #[test]
    fn known_services_and_operations_pass() {
        for selector in [
            r#"{ service = "dynamodb", operation = "GetItem" }"#,
            r#"{ service = "dynamodb", operation = "Put*" }"#,
            r#"{ service = "lambda", operation = "Invoke" }"#,
            r#"{ service = "*", operation = "Invoke" }"#,
            r#"{ service = "s3", operation = "GetObject" }"#,
            r#"{ operation = "SendMessage" }"#,
            r#"{ site = "checkout/*" }"#,
        ] {
            check_plan(&plan(selector)).unwrap_or_else(|e| panic!("{selector}: {e}"));
        }
    }

    #[test]
    fn an_unknown_service_is_named() {
        let error = check_plan(&plan(r#"{ service = "dynamo" }"#)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("\"dynamo\""), "{text}");
        assert!(text.contains("rule \"r\""), "{text}");
        assert!(text.contains("dynamodb, lambda"), "{text}");
    }

    #[test]
    fn an_unknown_operation_is_named() {
        let error =
            check_plan(&plan(r#"{ service = "dynamodb", operation = "GetItems" }"#)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("\"GetItems\""), "{text}");
        assert!(text.contains("dynamodb"), "{text}");
        let error =
            check_plan(&plan(r#"{ service = "lambda", operation = "Invoke*x" }"#)).unwrap_err();
        assert!(
            matches!(error, ConfigError::UnknownOperation { .. }),
            "{error}"
        );
    }

    #[test]
    fn names_round_trip() {
        for service in Service::ALL {
            assert_eq!(Service::from_name(service.name()), Some(service));
        }
        assert_eq!(Service::from_name("dynamo"), None);
    }
}
