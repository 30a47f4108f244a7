//! A plan file that reloads the injector when it changes: [`PlanFile`] (feature `runtime`).
//!
//! Polling, not file-system notifications: it works the same on every platform, in
//! containers and on network file systems, costs one small file read per interval, and runs
//! on tokio's clock (so tests under a paused clock take no real time). A change is a change
//! of contents (not of modification time, which some file systems keep to the second).
//!
//! Bad input keeps the injector's fail-safe: a file that does not parse, or cannot be read (it
//! was deleted, or its permissions changed), is a rejected reload, so with the default
//! [`OnRejectedReload::NoFaults`](crate::OnRejectedReload) nothing is injected until a
//! valid plan is written, a warning is traced, and
//! [`Injector::last_reload_error`] names the file and what is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::advanced::hash_str;
use crate::injector::Injector;
use crate::plan::{CompiledPlan, IntoCompiledPlan, PlanError};

/// A plan file watched by polling. See the [module docs](self).
///
/// ```no_run
/// use std::time::Duration;
/// use chaos_core::{Injector, watch::PlanFile};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut file = PlanFile::new("chaos-plan.toml");
/// let injector = Injector::new(file.load()?)?;
/// // Checks every 5 s for as long as the application runs.
/// tokio::spawn(file.watch(injector.clone(), Duration::from_secs(5)));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PlanFile {
    path: PathBuf,
    /// What the file held at the last check, so an unchanged file does nothing.
    seen: Option<Seen>,
}

/// The file's state at a check.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// Its contents' hash.
    Contents(u64),
    /// It could not be read, for this reason.
    Unreadable(String),
}

/// What one [`PlanFile::poll`] did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PollOutcome {
    /// The file is as it was at the last check: nothing done.
    Unchanged,
    /// The file changed and its plan is now in force.
    Reloaded,
    /// The file changed and its plan was rejected (or it could not be read): the injector's
    /// [`OnRejectedReload`](crate::OnRejectedReload) policy applies.
    Rejected(PlanError),
}

impl PlanFile {
    /// A watcher for the plan at `path` (`.json` as JSON, anything else as TOML).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            seen: None,
        }
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and compiles the plan now (to build the injector with), and remembers it, so
    /// the first [`poll`](Self::poll) does not reload the same plan.
    pub fn load(&mut self) -> Result<CompiledPlan, PlanError> {
        let seen = self.read();
        let plan = self.compile(&seen);
        self.seen = Some(seen);
        plan
    }

    /// Checks the file once: if its contents changed since the last check (or it became
    /// unreadable, or readable again), reloads `injector` with it.
    pub fn poll(&mut self, injector: &Injector) -> PollOutcome {
        let seen = self.read();
        if self.seen.as_ref() == Some(&seen) {
            return PollOutcome::Unchanged;
        }
        let plan = self.compile(&seen);
        self.seen = Some(seen);
        match injector.reload(FileContents(plan)) {
            Ok(()) => PollOutcome::Reloaded,
            Err(error) => PollOutcome::Rejected(error),
        }
    }

    /// Polls every `every` (at least 1 ms) on tokio's clock, forever: spawn it. A check that
    /// falls behind is not made up for with a burst.
    pub async fn watch(mut self, injector: Injector, every: Duration) {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the plan was just loaded (or is checked now).
        loop {
            ticks.tick().await;
            self.poll(&injector);
        }
    }

    fn read(&self) -> Seen {
        // A small file read; plan files are kilobytes.
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Seen::Contents(hash_str(&text)),
            Err(error) => Seen::Unreadable(error.to_string()),
        }
    }

    fn compile(&self, seen: &Seen) -> Result<CompiledPlan, PlanError> {
        match seen {
            // Read again by path, so errors name the file (a write in between is seen as a
            // change at the next check).
            Seen::Contents(_) => CompiledPlan::from_file(&self.path),
            Seen::Unreadable(message) => Err(PlanError::Io {
                path: self.path.clone(),
                message: message.clone(),
            }),
        }
    }
}

/// A plan read from a file, or why it could not be: reloading with it routes a bad file
/// through the injector's rejected-reload policy.
struct FileContents(Result<CompiledPlan, PlanError>);

impl IntoCompiledPlan for FileContents {
    fn into_compiled_plan(self) -> Result<CompiledPlan, PlanError> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the temporary directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("chaos-watch-{}-{name}.toml", std::process::id()));
            Self(path)
        }

        fn write(&self, text: &str) {
            std::fs::write(&self.0, text).expect("the temporary directory is writable");
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn plan(rule: &str) -> String {
        format!(
            "seed = 1\n[[rules]]\nname = \"{rule}\"\nfault = {{ status = 503 }}\nprobability = 1.0\n"
        )
    }

    fn names(injector: &Injector) -> Vec<String> {
        injector
            .snapshot()
            .rules
            .into_iter()
            .map(|rule| rule.label)
            .collect()
    }

    #[test]
    fn a_changed_file_reloads_and_an_unchanged_one_does_nothing() {
        let file = TempFile::new("changes");
        file.write(&plan("first"));
        let mut watched = PlanFile::new(&file.0);
        let injector = Injector::new(watched.load().expect("valid")).expect("valid");
        assert_eq!(watched.poll(&injector), PollOutcome::Unchanged);
        assert_eq!(injector.snapshot().generation, 0);

        file.write(&plan("second"));
        assert_eq!(watched.poll(&injector), PollOutcome::Reloaded);
        assert_eq!(names(&injector), ["second"]);
        assert_eq!(watched.poll(&injector), PollOutcome::Unchanged);
        assert_eq!(injector.snapshot().generation, 1);
    }

    #[test]
    fn a_bad_or_missing_file_stops_faults_until_a_valid_one_arrives() {
        let file = TempFile::new("fail-safe");
        file.write(&plan("first"));
        let mut watched = PlanFile::new(&file.0);
        let mut builder = Injector::builder();
        builder.plan(watched.load().expect("valid")).ignore_env();
        let injector = builder.build().expect("valid");

        file.write("seed = 1\n[[rules]]\nfault = { status = 503 }\nprobability = 2.0\n");
        let PollOutcome::Rejected(error) = watched.poll(&injector) else {
            panic!("an invalid plan is rejected");
        };
        let shown = error.to_string();
        assert!(shown.contains("probability"), "{shown}");
        assert!(injector.is_suspended());
        assert!(injector.decide(&crate::Call::new(1, "s")).is_pass());
        // The same bad file is not rejected again at every check.
        assert_eq!(watched.poll(&injector), PollOutcome::Unchanged);

        file.write(&plan("fixed"));
        assert_eq!(watched.poll(&injector), PollOutcome::Reloaded);
        assert!(!injector.is_suspended());

        std::fs::remove_file(&file.0).expect("removable");
        let PollOutcome::Rejected(PlanError::Io { path, .. }) = watched.poll(&injector) else {
            panic!("a missing file is a rejected reload");
        };
        assert_eq!(path, file.0);
        assert!(injector.is_suspended());
    }

    #[tokio::test(start_paused = true)]
    async fn watch_polls_on_tokios_clock() {
        let file = TempFile::new("watch");
        file.write(&plan("first"));
        let mut watched = PlanFile::new(&file.0);
        let injector = Injector::new(watched.load().expect("valid")).expect("valid");
        let task = tokio::spawn(watched.watch(injector.clone(), Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        file.write(&plan("second"));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(names(&injector), ["first"], "not checked yet");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(names(&injector), ["second"]);
        task.abort();
    }
}
