//! `corrupt` on an SDK call: the request reaches the service (moto on loopback, started by
//! `scripts/test.sh`) and acts, and the SDK gets the service's answer with its body corrupted
//! by chaos-core's `Corruption` (the decision's mode and seed), its `Content-Length` fixed up
//! and its checksums left as the service sent them. Each mode gives the error the SDK's
//! deserializer really raises on such an answer.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use chaos_aws::ChaosHttpClient;
use chaos_core::advanced::{Failure, hash_str};
use chaos_core::corrupt::{CorruptMode, Corruption};
use chaos_core::{Call, CompiledPlan, Injector};
use support::{Attempts, dynamodb, real_client};

/// One answer as the SDK's deserializer got it.
#[derive(Clone, Debug, Default)]
struct Answer {
    status: u16,
    content_length: Option<String>,
    crc32: Option<String>,
    body: Vec<u8>,
}

/// Records the answer of each attempt after the SDK read its body.
#[derive(Clone, Debug, Default)]
struct Answers(Arc<Mutex<Vec<Answer>>>);

impl Answers {
    fn last(&self) -> Answer {
        self.0.lock().unwrap().last().cloned().unwrap()
    }
}

impl Intercept for Answers {
    fn name(&self) -> &'static str {
        "answer-recorder"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(response) = context.response() {
            let headers = response.headers();
            self.0.lock().unwrap().push(Answer {
                status: response.status().as_u16(),
                content_length: headers.get("content-length").map(str::to_owned),
                crc32: headers.get("x-amz-crc32").map(str::to_owned),
                body: response.body().bytes().unwrap_or_default().to_vec(),
            });
        }
        Ok(())
    }
}

const MODES: [CorruptMode; 4] = [
    CorruptMode::Truncate,
    CorruptMode::Flip,
    CorruptMode::Empty,
    CorruptMode::JsonInvalid,
];

fn plan(operation: &str, mode: CorruptMode, seed: u64) -> String {
    format!(
        "seed = {seed}\n[[rules]]\nname = \"corrupt\"\nfault = {{ corrupt = \"{mode}\" }}\n\
         match = {{ service = \"dynamodb\", operation = \"{operation}\" }}\nprobability = 1.0\n"
    )
}

/// A client through a wrapper with `plan` (answers read up to `limit` bytes), recording
/// attempts and answers.
fn client(
    plan: &str,
    limit: Option<usize>,
    ids_seed: u64,
) -> (aws_sdk_dynamodb::Client, Attempts, Answers) {
    let mut injector = Injector::builder();
    injector
        .plan(CompiledPlan::from_toml_str(plan).unwrap())
        .ignore_env();
    let mut chaos = ChaosHttpClient::builder(real_client())
        .injector(injector.build().unwrap())
        .site("tests");
    if let Some(limit) = limit {
        chaos = chaos.corrupt_body_limit(limit);
    }
    let chaos = chaos.build().unwrap();
    let attempts = Attempts::default();
    let answers = Answers::default();
    let config = dynamodb(&chaos, &attempts, ids_seed)
        .config()
        .to_builder()
        .interceptor(answers.clone())
        .build();
    (
        aws_sdk_dynamodb::Client::from_conf(config),
        attempts,
        answers,
    )
}

/// The corruption chaos-core decided for the first attempt of the `service` operation whose
/// invocation id is `invocation_id`: replayed from the decision's inputs.
fn decided(plan: &str, service: &str, operation: &str, invocation_id: &str) -> Corruption {
    let injector = Injector::builder()
        .plan(CompiledPlan::from_toml_str(plan).unwrap())
        .ignore_env()
        .build()
        .unwrap();
    let call = Call::new(hash_str(invocation_id), "tests")
        .service(service)
        .operation(operation);
    match injector.decide(&call).failure.as_deref() {
        Some(Failure::Corrupt { corruption, .. }) => *corruption,
        other => panic!("expected a corruption, got {other:?}"),
    }
}

/// What the SDK makes of a corrupted answer with status 200: an empty body reads as `{}`
/// (success), other valid JSON as the output it describes, anything else fails in the
/// deserializer: a service error of the operation's unhandled kind, with no code or message,
/// wrapping the JSON `DeserializeError`, on the raw 200 answer. Returns whether the body
/// reads as JSON (and so the call succeeded).
fn assert_sdk_reading<O: std::fmt::Debug, E: std::fmt::Debug + ProvideErrorMetadata>(
    result: &Result<O, SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
    body: &[u8],
    what: &str,
) -> bool
where
    SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>: std::error::Error,
{
    let parses = body.is_empty() || serde_json::from_slice::<serde_json::Value>(body).is_ok();
    match result {
        Ok(_) => assert!(parses, "{what}: the SDK accepted {body:?}"),
        Err(error) => {
            assert!(
                !parses,
                "{what}: the SDK rejected valid JSON {body:?}: {error:?}"
            );
            let SdkError::ServiceError(service) = error else {
                panic!("{what}: expected a service error, got {error:?}");
            };
            assert_eq!(service.raw().status().as_u16(), 200, "{what}");
            assert_eq!((error.code(), error.message()), (None, None), "{what}");
            assert!(
                format!("{error:?}").contains("Unhandled(Unhandled { source: DeserializeError"),
                "{what}: {}",
                DisplayErrorContext(error)
            );
        }
    }
    parses
}

/// A fresh table named after `name` (and this process), and a client that reaches it
/// untouched (its rule selects `Scan` only).
async fn fresh_table(name: &str) -> (aws_sdk_dynamodb::Client, String) {
    support::endpoint(); // fails, saying why, without the emulator
    let (client, _, _) = client(&plan("Scan", CorruptMode::Empty, 1), None, 1);
    let table = format!("{name}-{}", std::process::id());
    let _ = client.delete_table().table_name(&table).send().await;
    support::create_table(&client, &table).await;
    (client, table)
}

#[tokio::test]
async fn a_corrupted_put_item_is_written_and_its_answer_corrupted() {
    let (plain, table) = fresh_table("corrupt-put").await;
    // moto's answer to a PutItem, as the service sent it.
    let (recorded, _, answers) = client(&plan("Scan", CorruptMode::Empty, 1), None, 2);
    recorded
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S("plain".into()))
        .send()
        .await
        .unwrap();
    let original = answers.last();
    assert_eq!(original.body, b"{}");
    let mut outcomes = Vec::new();
    for (index, mode) in MODES.into_iter().enumerate() {
        let plan = plan("PutItem", mode, 40 + index as u64);
        let (chaos, attempts, answers) = client(&plan, None, 3 + index as u64);
        let result = chaos
            .put_item()
            .table_name(&table)
            .item("id", AttributeValue::S(mode.label().into()))
            .item("total", AttributeValue::N("42".into()))
            .send()
            .await;
        // The request reached moto: the item is there.
        let stored = plain
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S(mode.label().into()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            stored.item().map(|item| &item["total"]),
            Some(&AttributeValue::N("42".into())),
            "{mode}"
        );
        // The SDK got moto's answer corrupted as the decision says, framed to its length,
        // with moto's CRC32 of the original body.
        let seen = attempts.all();
        assert_eq!(seen.len(), 1, "{mode}: a corrupted 200 is not retried");
        let corruption = decided(&plan, "dynamodb", "PutItem", &seen[0].invocation_id);
        assert_eq!(corruption.mode, mode);
        let answer = answers.last();
        assert_eq!(answer.body, corruption.apply(&original.body), "{mode}");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_length, Some(answer.body.len().to_string()));
        assert_eq!(
            answer.crc32, original.crc32,
            "{mode}: checksums are left alone"
        );
        assert!(answer.crc32.is_some(), "moto sends x-amz-crc32");
        outcomes.push(assert_sdk_reading(&result, &answer.body, mode.label()));
    }
    // `{}` flipped or with a control byte is never JSON; emptied, it reads as `{}`. These
    // seeds truncate it to `{`.
    assert_eq!(outcomes, [false, false, true, false]);
}

#[tokio::test]
async fn a_corrupted_get_item_fails_in_the_deserializer_or_reads_wrong() {
    let (plain, table) = fresh_table("corrupt-get").await;
    plain
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S("1".into()))
        .item("customer", AttributeValue::S("ada".into()))
        .item("total", AttributeValue::N("42".into()))
        .send()
        .await
        .unwrap();
    let (recorded, _, answers) = client(&plan("Scan", CorruptMode::Empty, 1), None, 20);
    let get = |client: &aws_sdk_dynamodb::Client| {
        client
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S("1".into()))
            .send()
    };
    let whole = get(&recorded).await.unwrap();
    let original = answers.last();
    for (index, mode) in MODES.into_iter().enumerate() {
        for seed in 0..4 {
            let plan = plan("GetItem", mode, 100 * index as u64 + seed);
            let (chaos, attempts, answers) = client(&plan, None, 21 + seed);
            let result = get(&chaos).await;
            let seen = attempts.all();
            assert_eq!(seen.len(), 1, "{mode}");
            let corruption = decided(&plan, "dynamodb", "GetItem", &seen[0].invocation_id);
            let answer = answers.last();
            assert_eq!(answer.body, corruption.apply(&original.body), "{mode}");
            assert_eq!(answer.content_length, Some(answer.body.len().to_string()));
            let what = format!("{mode} seed {seed}");
            if assert_sdk_reading(&result, &answer.body, &what) {
                let output = result.unwrap();
                match mode {
                    // A read whose answer was emptied looks like a missing item.
                    CorruptMode::Empty => assert_eq!(output.item(), None, "{what}"),
                    _ => assert_ne!(output.item(), whole.item(), "{what}"),
                }
            }
        }
    }
}

#[tokio::test]
async fn a_corrupted_error_answer_loses_its_code() {
    support::endpoint();
    let plan = plan("GetItem", CorruptMode::JsonInvalid, 5);
    let (chaos, attempts, answers) = client(&plan, None, 30);
    let error = chaos
        .get_item()
        .table_name("no-such-table")
        .key("id", AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap_err();
    // moto's 400 ResourceNotFoundException, its body no longer JSON: the SDK cannot read the
    // code, so the error is unhandled rather than typed, and is not retried.
    let answer = answers.last();
    assert_eq!(answer.status, 400);
    assert!(String::from_utf8_lossy(&answer.body).contains("ResourceNotFoundException"));
    let service = error.as_service_error().unwrap();
    assert!(!service.is_resource_not_found_exception(), "{error:?}");
    assert_eq!(error.code(), None);
    assert_eq!(attempts.count(), 1);
}

#[tokio::test]
async fn a_long_answer_is_read_and_corrupted_up_to_the_limit() {
    let (plain, table) = fresh_table("corrupt-long").await;
    let note = "x".repeat(4_000);
    plain
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S("1".into()))
        .item("note", AttributeValue::S(note.clone()))
        .send()
        .await
        .unwrap();
    let (recorded, _, answers) = client(&plan("Scan", CorruptMode::Empty, 1), None, 40);
    let get = |client: &aws_sdk_dynamodb::Client| {
        client
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S("1".into()))
            .send()
    };
    get(&recorded).await.unwrap();
    let original = answers.last();
    assert!(original.body.len() > 4_000);
    const LIMIT: usize = 256;
    for mode in MODES {
        let plan = plan("GetItem", mode, 9);
        let (chaos, attempts, answers) = client(&plan, Some(LIMIT), 41);
        let result = get(&chaos).await;
        let corruption = decided(
            &plan,
            "dynamodb",
            "GetItem",
            &attempts.all()[0].invocation_id,
        );
        let answer = answers.last();
        // Only the first LIMIT bytes were read, and the answer ends with them.
        assert_eq!(
            answer.body,
            corruption.apply(&original.body[..LIMIT]),
            "{mode}"
        );
        assert!(answer.body.len() <= LIMIT + 1, "{mode}");
        assert_eq!(answer.content_length, Some(answer.body.len().to_string()));
        assert_eq!(
            assert_sdk_reading(&result, &answer.body, mode.label()),
            mode == CorruptMode::Empty,
            "{mode}: a document cut at {LIMIT} bytes does not parse"
        );
    }
}

/// An S3 client through `chaos` to moto (path-style), recording attempts.
fn s3(chaos: &ChaosHttpClient, attempts: &Attempts) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::from_keys(
            "AKIDCHAOSTEST",
            "secret",
            None,
        ))
        .endpoint_url(support::endpoint())
        .force_path_style(true)
        .http_client(chaos.clone())
        .retry_partition(chaos_aws::isolated_retry_partition("corrupt-s3"))
        .interceptor(attempts.clone())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// S3 sends the object's CRC32 (`x-amz-checksum-crc32`, stored when the SDK uploaded it) and
/// the SDK checks it by default while the body is read: a corrupted object is a successful
/// `GetObject` whose body fails to read with a checksum mismatch, in every mode.
#[tokio::test]
async fn a_corrupted_s3_object_fails_its_checksum_as_it_is_read() {
    use aws_sdk_s3::primitives::ByteStream;
    support::endpoint();
    let object = br#"{"orderId":42,"items":[{"sku":"A-1","qty":2}],"total":19.98}"#;
    let plain = s3(
        &ChaosHttpClient::builder(real_client()).build().unwrap(),
        &Attempts::default(),
    );
    let bucket = format!("corrupt-{}", std::process::id());
    let _ = plain.create_bucket().bucket(&bucket).send().await;
    plain
        .put_object()
        .bucket(&bucket)
        .key("order.json")
        .body(ByteStream::from_static(object))
        .send()
        .await
        .unwrap();
    for mode in MODES {
        let plan = format!(
            "seed = 3\n[[rules]]\nname = \"corrupt\"\nfault = {{ corrupt = \"{mode}\" }}\n\
             match = {{ service = \"s3\", operation = \"GetObject\" }}\nprobability = 1.0\n"
        );
        let mut injector = Injector::builder();
        injector
            .plan(CompiledPlan::from_toml_str(&plan).unwrap())
            .ignore_env();
        let chaos = ChaosHttpClient::builder(real_client())
            .injector(injector.build().unwrap())
            .site("tests")
            .build()
            .unwrap();
        let attempts = Attempts::default();
        let output = s3(&chaos, &attempts)
            .get_object()
            .bucket(&bucket)
            .key("order.json")
            .send()
            .await
            .unwrap();
        let corruption = decided(&plan, "s3", "GetObject", &attempts.all()[0].invocation_id);
        let corrupted = corruption.apply(object);
        assert_eq!(
            output.content_length(),
            Some(corrupted.len() as i64),
            "{mode}"
        );
        assert!(
            output.checksum_crc32().is_some(),
            "{mode}: moto's CRC32 is kept"
        );
        let error = output.body.collect().await.unwrap_err();
        assert!(
            format!("{error:?}").contains("ChecksumMismatch"),
            "{mode}: {}",
            DisplayErrorContext(&error)
        );
        assert_eq!(attempts.count(), 1, "{mode}");
    }
}
