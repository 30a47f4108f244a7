use std::time::Duration;

use chaos_core::{Call, InjectedKind, Injector};
use serde_json::json;

use super::*;

fn injector(plan: &CompiledPlan) -> Injector {
    let mut builder = Injector::builder();
    builder.plan(plan.clone()).ignore_env();
    builder.build().expect("migrated plan")
}

/// failure-lambda 1.x, the README's example of per-mode flags with targeting.
#[test]
fn failure_lambda_flags_become_one_rule_per_enabled_mode_in_its_order() {
    let text = r#"{
      "latency": {"enabled": true, "percentage": 100, "min_latency": 100, "max_latency": 400},
      "exception": {"enabled": true, "percentage": 50, "exception_msg": "Exception message!"},
      "statuscode": {"enabled": true, "percentage": 25, "status_code": 502,
                     "match": [{"path": "requestContext.http.method", "value": "GET"}]},
      "timeout": {"enabled": false, "timeout_buffer_ms": 500},
      "diskspace": {"enabled": true, "disk_space": 100},
      "denylist": {"enabled": false, "deny_list": ["s3.*.amazonaws.com"]}
    }"#;
    let migrated = migrate(text, 7).expect("valid");
    assert_eq!(migrated.format, SourceFormat::FailureLambdaFlags);
    assert!(!migrated.status_runs_handler);
    let labels: Vec<_> = migrated.plan.labels().collect();
    assert_eq!(
        labels,
        [
            "failure-lambda/latency",
            "failure-lambda/statuscode",
            "failure-lambda/exception"
        ]
    );
    // Only the enabled unsupported mode is named.
    assert_eq!(migrated.warnings.len(), 1);
    assert_eq!(migrated.warnings[0].field, "diskspace");
    let rules = &migrated.plan.plan().to_json_string();
    let plan: serde_json::Value = serde_json::from_str(rules).expect("json");
    assert_eq!(plan["rules"][1]["probability"], json!(0.25));
    assert_eq!(plan["rules"][2]["probability"], json!(0.5));

    // Targeting: a POST is never answered with the status; a GET can be.
    let injector = injector(&migrated.plan);
    let post = json!({"requestContext": {"http": {"method": "POST"}}});
    let get = json!({"requestContext": {"http": {"method": "GET"}}});
    let statuses = |event: &serde_json::Value| {
        (0..400u64)
            .filter(|&key| {
                matches!(
                    injector
                        .decide(&Call::new(key, "f").event(event))
                        .failure
                        .as_deref(),
                    Some(chaos_core::advanced::Failure::Status { status: 502, .. })
                )
            })
            .count()
    };
    assert_eq!(statuses(&post), 0);
    // 25% of 400 is 100; sd = sqrt(400 * 0.25 * 0.75) ~ 8.7: 5 sd either side.
    assert!((57..=143).contains(&statuses(&get)), "{}", statuses(&get));
    // Every call gets 100 to 400 ms.
    for key in 0..100 {
        let latency = injector
            .decide(&Call::new(key, "f").event(&post))
            .added_latency;
        assert!(
            (Duration::from_millis(100)..=Duration::from_millis(400)).contains(&latency),
            "{latency:?}"
        );
    }
}

#[test]
fn failure_lambda_flags_operators_and_timeout() {
    let text = r#"{"timeout": {"enabled": true, "timeout_buffer_ms": 250,
      "match": [{"path": "headers.x-chaos", "operator": "exists"},
                {"path": "rawPath", "operator": "startsWith", "value": "/orders"},
                {"path": "body", "operator": "regex", "value": "^\\{.*\\}$"}]}}"#;
    let migrated = migrate(text, 1).expect("valid");
    let plan: serde_json::Value =
        serde_json::from_str(&migrated.plan.plan().to_json_string()).expect("json");
    let rule = &plan["rules"][0];
    assert_eq!(rule["fault"], json!({"hang": {"buffer": "250ms"}}));
    assert_eq!(rule["probability"], json!(1.0));
    assert_eq!(
        rule["match"]["event"][0],
        json!({"path": "/headers/x-chaos", "exists": true})
    );
    assert_eq!(
        rule["match"]["event"][1],
        json!({"path": "/rawPath", "prefix": "/orders"})
    );
    assert_eq!(rule["match"]["event"][2]["regex"], json!("^\\{.*\\}$"));
}

#[test]
fn pre_release_flags_with_rate_read_too() {
    let migrated = migrate(r#"{"exception": {"enabled": true, "rate": 0.3}}"#, 1).expect("valid");
    let plan: serde_json::Value =
        serde_json::from_str(&migrated.plan.plan().to_json_string()).expect("json");
    assert_eq!(plan["rules"][0]["probability"], json!(0.3));
}

/// failure-lambda 0.x, the README's parameter example.
#[test]
fn failure_lambda_legacy_single_mode() {
    let text = r#"{"isEnabled": true, "failureMode": "latency", "rate": 1,
      "minLatency": 100, "maxLatency": 400, "exceptionMsg": "Exception message!",
      "statusCode": 404, "diskSpace": 100, "denylist": ["s3.*.amazonaws.com", "dynamodb.*.amazonaws.com"]}"#;
    let migrated = migrate(text, 3).expect("valid");
    assert_eq!(migrated.format, SourceFormat::FailureLambdaLegacy);
    assert_eq!(
        migrated.plan.labels().collect::<Vec<_>>(),
        ["failure-lambda/latency"]
    );
    assert!(migrated.warnings.is_empty());

    let status = migrate(&text.replace("\"latency\"", "\"statuscode\""), 3).expect("valid");
    let injector = injector(&status.plan);
    let error = injector.decide(&Call::new(1, "f"));
    assert!(matches!(
        error.failure.as_deref(),
        Some(chaos_core::advanced::Failure::Status { status: 404, .. })
    ));

    let disk = migrate(&text.replace("\"latency\"", "\"diskspace\""), 3).expect("valid");
    assert_eq!(disk.plan.rule_count(), 0);
    assert_eq!(disk.warnings[0].field, "diskspace");

    let off = migrate(
        &text.replace("\"isEnabled\": true", "\"isEnabled\": false"),
        3,
    )
    .expect("valid");
    assert_eq!(off.plan.rule_count(), 0);
}

/// chaos_lambda's documented SSM parameter.
#[test]
fn chaos_lambda_parameter() {
    let text = r#"{"delay": 400, "is_enabled": true, "error_code": 404,
      "exception_msg": "This is chaos", "rate": 1, "fault_type": "exception"}"#;
    let migrated = migrate(text, 5).expect("valid");
    assert_eq!(migrated.format, SourceFormat::ChaosLambda);
    assert!(migrated.status_runs_handler);
    let injector = injector(&migrated.plan);
    let verdict = injector.decide(&Call::new(9, "f"));
    match verdict.failure.as_deref() {
        Some(chaos_core::advanced::Failure::Error {
            kind: chaos_core::ErrorKind::Custom { message, .. },
            ..
        }) => {
            assert_eq!(message, "This is chaos");
        }
        other => panic!("expected the exception, got {other:?}"),
    }
    let latency = migrate(&text.replace("\"exception\"", "\"latency\""), 5).expect("valid");
    let verdict = self::injector(&latency.plan).decide(&Call::new(9, "f"));
    assert_eq!(verdict.added_latency, Duration::from_millis(400));
    let status = migrate(&text.replace("\"exception\"", "\"status_code\""), 5).expect("valid");
    assert!(matches!(
        self::injector(&status.plan)
            .decide(&Call::new(9, "f"))
            .failure
            .as_deref(),
        Some(chaos_core::advanced::Failure::Status { status: 404, .. })
    ));
    let _ = InjectedKind::Hang;
}

#[test]
fn bad_input_names_the_field_and_the_fix() {
    let cases = [
        (
            r#"{"latency": {"enabled": true, "min_latency": 500, "max_latency": 100}}"#,
            "latency.min_latency",
            "swap",
        ),
        (
            r#"{"statuscode": {"enabled": true, "percentage": 150, "status_code": 500}}"#,
            "statuscode.percentage",
            "0 to 100",
        ),
        (
            r#"{"statuscode": {"enabled": true, "status_code": 700}}"#,
            "statuscode.status_code",
            "100 to 599",
        ),
        (
            r#"{"exception": {"enabled": "yes"}}"#,
            "exception.enabled",
            "true or false",
        ),
        (
            r#"{"latency": {"enabled": true, "min_latency": 1, "max_latency": 2, "match": [{"path": "a", "operator": "gt", "value": "1"}]}}"#,
            "latency.match[0].operator",
            "startsWith",
        ),
        (
            r#"{"isEnabled": true, "failureMode": "blackhole"}"#,
            "failureMode",
            "unknown mode `blackhole`",
        ),
        (
            r#"{"is_enabled": true, "fault_type": "latency", "rate": 2, "delay": 5}"#,
            "rate",
            "0 to 1",
        ),
        (
            r#"{"is_enabled": true, "fault_type": "status_code"}"#,
            "error_code",
            "such as 502",
        ),
    ];
    for (text, field, fix) in cases {
        let error = migrate(text, 0).expect_err(text);
        let message = error.to_string();
        assert!(
            matches!(&error, MigrateError::Field { field: f, .. } if f == field),
            "{text}: {message}"
        );
        assert!(message.contains(fix), "{text}: {message}");
    }
    assert_eq!(
        migrate(r#"{"seed": 1, "rules": []}"#, 0).unwrap_err(),
        MigrateError::UnknownFormat
    );
    assert!(matches!(migrate("not json", 0), Err(MigrateError::Json(_))));
    let regex = migrate(
        r#"{"latency": {"enabled": true, "min_latency": 1, "max_latency": 2, "match": [{"path": "a", "operator": "regex", "value": "("}]}}"#,
        0,
    );
    assert!(matches!(regex, Err(MigrateError::Plan { .. })), "{regex:?}");
}
