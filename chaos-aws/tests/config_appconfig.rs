//! AppConfig through the Lambda extension's local HTTP endpoint. The emulator has no
//! AppConfig data plane: a small loopback server stands in for the extension, answering what
//! each test sets (a configuration, an error status, a body that is no plan, or nothing).
//! Every test captures `tracing` (warnings are asserted; see config_warnings.rs on why the
//! capture is set before any event).

#![allow(clippy::unwrap_used)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_aws::{AppConfigSource, ConfigSource, LiveConfig, RefreshOutcome};
use chaos_core::{Call, Injector};

const THROTTLE_GET_ITEM: &str = r#"{"seed": 9, "rules": [{"name": "throttled-reads",
  "fault": {"error": "throttle"}, "match": {"service": "dynamodb", "operation": "GetItem"},
  "probability": 1.0}]}"#;

const THROTTLE_PUT_ITEM: &str = r#"
seed = 9
[[rules]]
name = "throttled-writes"
fault = { error = "throttle" }
match = { service = "dynamodb", operation = "PutItem" }
probability = 1.0
"#;

/// What the stand-in extension answers.
#[derive(Clone, Debug)]
enum Answer {
    /// This status and body.
    Reply(u16, String),
    /// Nothing, until the client hangs up.
    Silence,
}

/// A loopback HTTP/1.1 server answering like the AppConfig extension: one thread per
/// connection, so a silent answer does not hold up the next request.
struct FakeExtension {
    port: u16,
    answer: Arc<Mutex<Answer>>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl FakeExtension {
    fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = Arc::new(Mutex::new(answer));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (shared_answer, shared_paths) = (answer.clone(), paths.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (answer, paths) = (shared_answer.clone(), shared_paths.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &answer, &paths);
                });
            }
        });
        Self {
            port,
            answer,
            paths,
        }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn requests(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }

    fn source(&self) -> AppConfigSource {
        AppConfigSource::new("orders", "staging", "chaos-plan").port(self.port)
    }
}

fn serve(stream: TcpStream, answer: &Mutex<Answer>, paths: &Mutex<Vec<String>>) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    paths.lock().unwrap().push(path);
    let answer = answer.lock().unwrap().clone();
    match answer {
        Answer::Reply(status, body) => {
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                 Configuration-Version: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            stream.flush()
        }
        Answer::Silence => {
            // Holds the connection until the client gives up and closes it.
            let mut rest = Vec::new();
            io::Read::read_to_end(&mut reader, &mut rest).map(|_| ())
        }
    }
}

fn injector() -> Injector {
    let mut builder = Injector::builder();
    builder.ignore_env();
    builder.build().unwrap()
}

fn faults(injector: &Injector, operation: &str) -> bool {
    let call = Call::new(1, "aws").service("dynamodb").operation(operation);
    !injector.decide(&call).is_pass()
}

/// Collects what `tracing` writes while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn warnings_with(&self, text: &str) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains("WARN") && line.contains(text))
            .map(str::to_owned)
            .collect()
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// Waits (on the real clock, for at most 30 s) until a background refresh has finished.
async fn settled(live: &LiveConfig) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while live.is_stale() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the background refresh finishes");
}

#[tokio::test]
async fn a_configuration_loads_from_the_extensions_path() {
    let (captured, _guard) = capture();
    let extension = FakeExtension::start(Answer::Reply(200, THROTTLE_GET_ITEM.to_owned()));
    let live = LiveConfig::new(ConfigSource::AppConfig(extension.source()), injector());
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 1 });
    assert!(faults(live.injector(), "GetItem"));
    assert_eq!(
        extension.requests(),
        ["/applications/orders/environments/staging/configurations/chaos-plan"]
    );
    // TOML works too, and so do the formats teams migrate from (failure-lambda 1.x here).
    extension.set(Answer::Reply(200, THROTTLE_PUT_ITEM.to_owned()));
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 1 });
    assert!(faults(live.injector(), "PutItem") && !faults(live.injector(), "GetItem"));
    extension.set(Answer::Reply(
        200,
        r#"{"exception": {"enabled": true, "percentage": 100, "exception_msg": "boom"}}"#
            .to_owned(),
    ));
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 1 });
    assert!(captured.warnings_with("chaos").is_empty());
}

#[tokio::test]
async fn error_statuses_mean_no_faults_and_one_warning() {
    let (captured, _guard) = capture();
    let extension = FakeExtension::start(Answer::Reply(200, THROTTLE_GET_ITEM.to_owned()));
    let live = LiveConfig::new(ConfigSource::AppConfig(extension.source()), injector());
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 1 });
    for (status, body, expected) in [
        (
            404,
            r#"{"Message":"Profile not found"}"#,
            "404 Not Found: {\"Message\":\"Profile not found\"}; check the application",
        ),
        (500, "", "answered 500 Internal Server Error"),
        (502, "upstream error", "502 Bad Gateway: upstream error"),
    ] {
        extension.set(Answer::Reply(status, body.to_owned()));
        let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
            panic!("{status} must not load");
        };
        assert!(reason.contains(expected), "{status}: {reason}");
        assert!(
            reason.contains("AppConfig orders/staging/chaos-plan"),
            "{reason}"
        );
        assert!(!faults(live.injector(), "GetItem"), "{status}: no faults");
    }
    // One warning for the whole failing streak, naming the source and the first error.
    let warnings = captured.warnings_with("configuration unusable");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("404") && warnings[0].contains("AppConfig orders/staging"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_body_that_is_no_plan_means_no_faults() {
    let (captured, _guard) = capture();
    let extension = FakeExtension::start(Answer::Reply(200, "{\"seed\": 9, \"rules\": [".into()));
    let live = LiveConfig::new(ConfigSource::AppConfig(extension.source()), injector());
    let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
        panic!("a truncated plan must not load");
    };
    assert!(
        reason.contains("AppConfig orders/staging/chaos-plan"),
        "{reason}"
    );
    // A plan that parses but names an operation the wrapper does not know.
    extension.set(Answer::Reply(
        200,
        THROTTLE_GET_ITEM.replace("GetItem", "GetItems"),
    ));
    let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
        panic!("an unknown operation must not load");
    };
    assert!(reason.contains("\"GetItems\""), "{reason}");
    assert!(!faults(live.injector(), "GetItem"));
    assert_eq!(captured.warnings_with("configuration unusable").len(), 1);
}

#[tokio::test]
async fn no_extension_listening_means_no_faults() {
    let (_captured, _guard) = capture();
    // A port nothing listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = AppConfigSource::new("orders", "staging", "chaos-plan").port(port);
    let live = LiveConfig::new(ConfigSource::AppConfig(source), injector());
    let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
        panic!("no extension must not load");
    };
    assert!(
        reason.contains("cannot connect to the AppConfig extension"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_slow_answer_never_holds_up_a_decision_and_times_out_to_no_faults() {
    let (captured, _guard) = capture();
    let extension = FakeExtension::start(Answer::Reply(200, THROTTLE_GET_ITEM.to_owned()));
    let source = extension.source().timeout(Duration::from_millis(200));
    let live = LiveConfig::with_ttl(ConfigSource::AppConfig(source), injector(), Duration::ZERO);
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 1 });

    extension.set(Answer::Silence);
    // The hot path starts the refetch and returns; the plan in force keeps deciding meanwhile.
    assert!(live.is_stale());
    live.refresh_if_stale();
    assert!(faults(live.injector(), "GetItem"));
    tokio::task::yield_now().await;
    assert!(
        faults(live.injector(), "GetItem"),
        "a refetch in flight leaves the cached plan in force"
    );
    // The extension never answers: the fetch gives up at its timeout, and no faults follow.
    tokio::time::timeout(Duration::from_secs(30), async {
        while faults(live.injector(), "GetItem") {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the slow fetch times out");
    let warnings = captured.warnings_with("configuration unusable");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("did not answer within 200ms"),
        "{warnings:?}"
    );
    assert_eq!(extension.requests().len(), 2);
}

#[tokio::test]
async fn a_changed_configuration_is_picked_up_once_the_ttl_passes() {
    let (_captured, _guard) = capture();
    let extension = FakeExtension::start(Answer::Reply(200, THROTTLE_GET_ITEM.to_owned()));
    let live = LiveConfig::with_ttl(
        ConfigSource::AppConfig(extension.source()),
        injector(),
        Duration::from_secs(60),
    );
    // The first request fetches in the background; nothing is injected until it lands.
    live.refresh_if_stale();
    assert!(!faults(live.injector(), "GetItem"));
    settled(&live).await;
    assert!(faults(live.injector(), "GetItem"));
    assert_eq!(extension.requests().len(), 1);

    // The configuration changes; within the TTL the cached plan is used, with no fetch.
    // (The clock is paused only while no request is in flight: under a paused clock tokio
    // jumps to the next timer whenever it waits on I/O.)
    extension.set(Answer::Reply(200, THROTTLE_PUT_ITEM.to_owned()));
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(59)).await;
    live.refresh_if_stale();
    tokio::task::yield_now().await;
    assert!(!live.is_stale());
    assert!(faults(live.injector(), "GetItem"), "still the cached plan");
    assert_eq!(extension.requests().len(), 1, "no fetch within the TTL");

    // Past the TTL the next request refetches, off its own path.
    tokio::time::advance(Duration::from_secs(1)).await;
    tokio::time::resume();
    assert!(live.is_stale());
    live.refresh_if_stale();
    assert!(
        faults(live.injector(), "GetItem"),
        "the hot path did not wait"
    );
    settled(&live).await;
    assert!(faults(live.injector(), "PutItem"));
    assert!(!faults(live.injector(), "GetItem"));
    assert_eq!(extension.requests().len(), 2);
}
