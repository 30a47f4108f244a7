//! Live plans from SSM Parameter Store, against moto on loopback: String and SecureString
//! parameters load; a missing parameter means no faults.

#![allow(clippy::unwrap_used)]

mod support;

use aws_sdk_ssm::types::ParameterType;
use chaos_aws::{ConfigSource, LiveConfig, RefreshOutcome};
use chaos_core::{Call, Injector};

const PLAN: &str = r#"{"seed": 4, "rules": [{"name": "slow-invokes",
  "fault": {"latency": "250ms"}, "match": {"service": "lambda", "operation": "Invoke"},
  "probability": 1.0}]}"#;

fn ssm() -> aws_sdk_ssm::Client {
    use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::from_keys("AKIDCHAOSTEST", "secret", None))
        .endpoint_url(support::endpoint())
        .http_client(support::real_client())
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

fn injector() -> Injector {
    let mut builder = Injector::builder();
    builder.ignore_env();
    builder.build().unwrap()
}

#[tokio::test]
async fn string_and_secure_string_parameters_load() {
    let client = ssm();
    for (name, kind) in [
        ("/chaos-aws/tests/plan-string", ParameterType::String),
        ("/chaos-aws/tests/plan-secure", ParameterType::SecureString),
    ] {
        client
            .put_parameter()
            .name(name)
            .value(PLAN)
            .r#type(kind.clone())
            .overwrite(true)
            .send()
            .await
            .unwrap();
        let live = LiveConfig::new(ConfigSource::ssm(client.clone(), name), injector());
        assert_eq!(
            live.refresh().await,
            RefreshOutcome::Loaded { rules: 1 },
            "{kind:?}"
        );
        let verdict = live
            .injector()
            .decide(&Call::new(1, "aws").service("lambda").operation("Invoke"));
        assert_eq!(
            verdict.added_latency,
            std::time::Duration::from_millis(250),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_parameter_means_no_faults() {
    let live = LiveConfig::new(
        ConfigSource::ssm(ssm(), "/chaos-aws/tests/no-such-parameter"),
        injector(),
    );
    let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
        panic!("a missing parameter must not load");
    };
    assert!(
        reason.contains("SSM parameter /chaos-aws/tests/no-such-parameter")
            && reason.contains("ParameterNotFound"),
        "{reason}"
    );
}
