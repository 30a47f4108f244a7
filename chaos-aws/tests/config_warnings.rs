//! A broken live configuration means no faults and one structured warning per failing streak.
//! Alone in its test binary: `tracing` caches each event site's interest process-wide, and a
//! test emitting the same warning on another thread, with no subscriber, can race the capture.

#![allow(clippy::unwrap_used)]

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chaos_aws::{ConfigSource, LiveConfig, RefreshOutcome};
use chaos_core::{Call, Injector};

const GOOD_TOML: &str = r#"
seed = 9
[[rules]]
name = "throttled-reads"
fault = { error = "throttle" }
match = { service = "dynamodb", operation = "GetItem" }
probability = 1.0
"#;

/// A file under the system's temporary directory, removed when dropped.
struct TempPlan(PathBuf);

impl TempPlan {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("chaos-aws-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempPlan {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn injector() -> Injector {
    let mut builder = Injector::builder();
    builder.ignore_env();
    builder.build().unwrap()
}

fn throttles_get_item(injector: &Injector) -> bool {
    let call = Call::new(1, "aws").service("dynamodb").operation("GetItem");
    !injector.decide(&call).is_pass()
}

/// Collects what `tracing` writes while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines_with(&self, text: &str) -> usize {
        let bytes = self.0.lock().expect("not poisoned").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains(text))
            .count()
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

#[tokio::test(start_paused = true)]
async fn failures_mean_no_faults_and_one_warning_per_streak() {
    let (captured, _guard) = capture();
    let file = TempPlan::new("streak.toml", GOOD_TOML);
    let live = LiveConfig::new(ConfigSource::file(&file.0), injector());
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 1 });

    // A broken plan: faults stop at once, one warning however many refreshes fail.
    file.write("seed = 9\n[[rules]]\nfault = { error = \"throtle\" }\nprobability = 1.0\n");
    for _ in 0..3 {
        let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
            panic!("a broken plan must not load");
        };
        assert!(
            reason.contains("throttle"),
            "the parse error says the fix: {reason}"
        );
        assert!(!throttles_get_item(live.injector()));
    }
    assert_eq!(captured.lines_with("configuration unusable"), 1);

    // Fixed: faults resume, and a later failure warns again.
    file.write(GOOD_TOML);
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 1 });
    assert!(throttles_get_item(live.injector()));
    assert_eq!(captured.lines_with("faults resume"), 1);
    drop(file);
    let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
        panic!("a missing file must not load");
    };
    assert!(reason.contains("does not exist"), "{reason}");
    assert_eq!(captured.lines_with("configuration unusable"), 2);
}
