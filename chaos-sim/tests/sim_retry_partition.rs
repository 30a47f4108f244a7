//! The SDK retry quota kept per retry partition (issue 11, item 9): dependencies reached
//! through one SDK client (`retry_partition = "dynamodb"` on two tables) share one token
//! bucket and held permit, so throttles on one table spend the retries of calls to the other,
//! as the AWS SDK's process-wide bucket per service and Region does (FACTS.md). Every count
//! below is derived by hand from the bucket's rules (500 tokens, a throttle retry costs 5, a
//! granted retry's permit replaces the held one, a success returns the held permit or else 1
//! token, never above 500), not read off the engine.

use chaos_core::LatencyDist;
use chaos_core::{ErrorKind, Rule};
use chaos_sim::model::{Dependency, Function, LoadShape, OpenLoop, QuotaScope, Retry, Step};
use chaos_sim::{RunMetrics, ScenarioBuilder, Simulation, scenario};
use std::time::Duration;

fn run(text: &str) -> RunMetrics {
    let s = scenario::parse(text, "partition.toml").unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .run_experiment()
}

/// Requests every 10 s (t = 10 s, 20 s, ..., 1600 s), each calling `orders` and then
/// `carts` with `sdk_standard` and a fallback (so a failed call does not end the request).
/// The SDK's backoff waits at most 1 s then 2 s, so a call takes at most 3.01 s and a
/// request at most 6.02 s: no two overlap, and with a 1 s keep-alive an environment always
/// expires before the next request. `orders` throttles every attempt; `carts` throttles every
/// attempt from 1205 s, after request 120's last call (at most 1203.02 s) and before request
/// 121 (1210 s). `KEEP_ALIVE` decides whether one environment serves every request (10 min)
/// or each request gets a new one (1 s).
const TWO_TABLES: &str = r#"
[simulation]
seed = 5
requests = 160
[load]
target = "api"
kind = "constant"
rate_per_s = 0.1
[[function]]
name = "api"
timeout = "10s"
cold_start = "0ms"
keep_alive = "KEEP_ALIVE"
handler = [
  { call = "orders", retry = "sdk_standard", quota_scope = "SCOPE", fallback = true },
  { call = "carts", retry = "sdk_standard", quota_scope = "SCOPE", fallback = true },
]
[[dependency]]
name = "orders"
latency = "5ms"
ORDERS_PARTITION
[[dependency]]
name = "carts"
latency = "5ms"
CARTS_PARTITION
[[fault]]
name = "orders_throttled"
fault = { error = "throttle" }
match = { service = "orders" }
probability = 1.0
[[fault]]
name = "carts_throttled"
fault = { error = "throttle" }
match = { service = "carts" }
probability = 1.0
window = { start = "1205s", duration = "1h" }
"#;

const REQUESTS: u64 = 160;
/// Requests before `carts` throttles (t = 10 s to 1200 s).
const BEFORE: u64 = 120;
/// Requests while both throttle.
const DURING: u64 = REQUESTS - BEFORE;

#[derive(Clone, Copy)]
enum Partitions {
    /// Both tables name `retry_partition = "dynamodb"`.
    Shared,
    /// Neither names one (the default): a quota per table.
    PerTable,
}

fn two_tables(partitions: Partitions, scope: &str, keep_alive: &str) -> String {
    let line = match partitions {
        Partitions::Shared => "retry_partition = \"dynamodb\"",
        Partitions::PerTable => "",
    };
    TWO_TABLES
        .replace("ORDERS_PARTITION", line)
        .replace("CARTS_PARTITION", line)
        .replace("SCOPE", scope)
        .replace("KEEP_ALIVE", keep_alive)
}

/// (retries granted, retries refused by the quota) with one client for the whole run (one
/// environment, or one quota for the function).
fn one_client(partitions: Partitions) -> (u64, u64) {
    match partitions {
        Partitions::Shared => {
            // Before `carts` throttles, request k: `orders` fails 3 times, its 2 retries take
            // 5 each (the second permit replaces the first, whose 5 are gone), then `carts`
            // succeeds at once and returns the held permit: net -5 a request. Before request
            // k the bucket holds 500 - 5(k - 1); both retries need 10, so requests 1 to 99
            // get 2 (request 99: 10 -> 0, +5 back). From request 100 on the bucket starts
            // at 5: 1 retry granted (5 -> 0), the second refused, and `carts` gives the 5
            // back. 99 x 2 + 21 x 1 granted, 21 refused.
            let before = (2 * 99 + (BEFORE - 99), BEFORE - 99);
            // Then `carts` throttles too. Request 121 starts at 5: `orders` gets 1 retry
            // (5 -> 0) and is refused once; `carts` is refused at once (0 tokens), and with
            // no success the held permit never comes back: every later call is refused at
            // once. `carts` gets no retry at all: `orders` drained the shared bucket.
            let during = (1, 2 + 2 * (DURING - 1));
            (before.0 + during.0, before.1 + during.1)
        }
        Partitions::PerTable => {
            // `orders` alone: never a success, so each request takes 10 for good; 500 / 10 =
            // 50 requests get both retries, the other 110 are refused at their first.
            let orders = (2 * 50, REQUESTS - 50);
            // `carts` alone: full when it starts throttling (first-try successes add 1, held
            // at 500); 40 requests x 10 = 400 <= 500: every retry granted.
            let carts = (2 * DURING, 0);
            (orders.0 + carts.0, orders.1 + carts.1)
        }
    }
}

fn check(m: &RunMetrics, (retries, refused): (u64, u64), label: &str) {
    assert_eq!(m.requests, REQUESTS, "{label}");
    assert_eq!(m.in_flight, 0, "{label}");
    // `orders` fails in every request, so each is served by its fallback.
    assert_eq!(m.fallback_served, REQUESTS, "{label}");
    assert_eq!(m.retries, retries, "{label}: retries");
    assert_eq!(m.retry_quota_exhausted, refused, "{label}: refused");
    // Every request makes one first try per table, plus the retries granted.
    assert_eq!(m.attempts, 2 * REQUESTS + retries, "{label}: attempts");
}

#[test]
fn throttles_on_one_table_spend_the_retries_of_the_other_in_a_shared_partition() {
    for scope in ["environment", "function"] {
        let shared = run(&two_tables(Partitions::Shared, scope, "10m"));
        assert_eq!(
            shared.cold_starts, 1,
            "one environment serves every request"
        );
        check(&shared, one_client(Partitions::Shared), scope);
        let per_table = run(&two_tables(Partitions::PerTable, scope, "10m"));
        check(&per_table, one_client(Partitions::PerTable), scope);
    }
    // The figures the derivation gives, spelled out: the shared partition grants `carts`
    // none of the 80 retries it gets on a quota of its own.
    assert_eq!(one_client(Partitions::Shared), (220, 101));
    assert_eq!(one_client(Partitions::PerTable), (180, 110));
}

#[test]
fn a_new_environment_brings_a_full_quota_unless_the_function_shares_one() {
    // Every request in a new environment (1 s keep-alive, 10 s apart).
    let fresh = two_tables(Partitions::Shared, "environment", "1s");
    let m = run(&fresh);
    assert_eq!(m.cold_starts, REQUESTS);
    // A full bucket each time: 2 retries for `orders` (500 -> 490), then, while `carts`
    // throttles, 2 for `carts` too (490 -> 480); nothing refused.
    check(
        &m,
        (2 * BEFORE + 4 * DURING, 0),
        "environment, new each time",
    );
    // One quota for the function outlives its environments: the same counts as one client.
    let m = run(&two_tables(Partitions::Shared, "function", "1s"));
    assert_eq!(m.cold_starts, REQUESTS);
    check(
        &m,
        one_client(Partitions::Shared),
        "function, new environments",
    );
}

/// Two environments live at once, each holding its own quota per table: a burst of two
/// requests every 10 s (each request ends within 6.02 s, the keep-alive is 10 minutes), so
/// every burst finds both environments idle and each serves one of its requests, 80 each.
/// `orders` throttles every attempt and never succeeds, so each request takes 10 tokens for
/// good from its environment's `orders` quota: 500 / 10 = 50 requests per environment get
/// both retries, the other 30 are refused at their first. Sharing one environment's quotas
/// would grant 50 requests in all and refuse 110.
#[test]
fn environments_alive_at_once_keep_a_quota_per_table_each() {
    let bursts: Vec<String> = (1..=80)
        .map(|k| format!("{{ at = \"{}s\", count = 2 }}", 10 * k))
        .collect();
    let load = format!(
        "[simulation]\nseed = 5\nduration = \"900s\"\n[load]\ntarget = \"api\"\nkind = \"constant\"\nrate_per_s = 0\nbursts = [{}]",
        bursts.join(", ")
    );
    let text = two_tables(Partitions::PerTable, "environment", "10m");
    let (_, rest) = text
        .split_once("[[function]]")
        .expect("the scenario has a function");
    // Only `orders` throttles (the `carts` rule's window starts after the last burst).
    let m = run(&format!("{load}\n[[function]]{rest}"));
    assert_eq!(m.cold_starts, 2, "two environments serve every burst");
    let per_environment = (2 * 50, 80 - 50);
    check(
        &m,
        (2 * per_environment.0, 2 * per_environment.1),
        "two environments, a quota per table each",
    );
}

#[test]
fn a_partition_is_kept_per_region_served() {
    // The SDK's default partition is `<service>-<Region>`: `carts` served from another
    // Region than `orders` draws on another bucket, though both name `dynamodb`.
    let text = two_tables(Partitions::Shared, "environment", "10m").replace(
        "name = \"carts\"\n",
        "name = \"carts\"\nregion = \"eu-west-1\"\n",
    );
    check(
        &run(&text),
        one_client(Partitions::PerTable),
        "carts in eu-west-1",
    );
}

#[test]
fn the_builder_form_runs_as_the_file() {
    let ms = Duration::from_millis;
    let call = |table: &str| {
        Step::call(table)
            .retry(Retry::SdkStandard)
            .quota_scope(QuotaScope::Environment)
            .with_fallback()
            .step()
    };
    let mut api = Function::new("api", vec![call("orders"), call("carts")]);
    api.timeout = Duration::from_secs(10);
    api.cold_start = LatencyDist::constant(Duration::ZERO);
    let table = |name: &str| {
        Dependency::new(name, LatencyDist::constant(ms(5))).with_retry_partition("dynamodb")
    };
    let throttle = |table: &str| {
        Rule::error(ErrorKind::Throttle)
            .named(format!("{table}_throttled"))
            .for_service(table)
            .with_probability(1.0)
    };
    let mut b = ScenarioBuilder::new("partition", "api");
    b.seed(5)
        .requests(REQUESTS)
        .load(LoadShape::Open(OpenLoop::constant(0.1)))
        .function(api)
        .dependency(table("orders"))
        .dependency(table("carts"))
        .fault(throttle("orders"))
        .fault(throttle("carts").during(Duration::from_secs(1205), Duration::from_secs(3600)));
    let built = Simulation::new(b.build().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .run_experiment();
    check(&built, one_client(Partitions::Shared), "builder");
    let from_file = run(&two_tables(Partitions::Shared, "environment", "10m"));
    assert_eq!(
        (built.events, built.work_end_ns),
        (from_file.events, from_file.work_end_ns)
    );
}

/// Poisson arrivals to both tables, each attempt throttled with probability 0.7: many
/// concurrent environments interleave grants, refusals and refunds in the function's one
/// quota for both tables.
const RANDOM: &str = r#"
[simulation]
seed = 21
duration = "60s"
[load]
target = "api"
kind = "poisson"
rate_per_s = 40
[[function]]
name = "api"
handler = [
  { call = "orders", retry = "sdk_standard", quota_scope = "function", fallback = true },
  { call = "carts", retry = "sdk_standard", quota_scope = "function" },
]
[[dependency]]
name = "orders"
latency = { log_normal = { p50 = "8ms", p99 = "40ms" } }
retry_partition = "dynamodb"
[[dependency]]
name = "carts"
latency = { log_normal = { p50 = "8ms", p99 = "40ms" } }
retry_partition = "dynamodb"
[[fault]]
fault = { error = "throttle" }
match = { service = "*" }
probability = 0.7
"#;

#[test]
fn the_same_seed_gives_a_byte_identical_report_and_another_seed_differs() {
    let report = |text: &str| {
        let s = scenario::parse(text, "random.toml").unwrap_or_else(|e| panic!("{e}"));
        Simulation::new(s)
            .unwrap_or_else(|e| panic!("{e}"))
            .run()
            .to_json()
    };
    let first = report(RANDOM);
    assert_eq!(first, report(RANDOM));
    assert_ne!(first, report(&RANDOM.replace("seed = 21", "seed = 22")));
    // The run is one that exercises the shared quotas: several environments, retries both
    // granted and refused.
    let m = run(RANDOM);
    assert!(m.cold_starts > 1, "{}", m.cold_starts);
    assert!(
        m.retries > 0 && m.retry_quota_exhausted > 0,
        "{} {}",
        m.retries,
        m.retry_quota_exhausted
    );
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    1 + text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}`"))
}

fn parse_error(text: &str) -> chaos_sim::ScenarioError {
    match scenario::parse(text, "partition.toml") {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn a_blank_or_padded_partition_name_is_rejected_where_it_is_written() {
    let text = two_tables(Partitions::Shared, "environment", "10m");
    // The first is `orders`'s.
    let line = line_of(&text, "retry_partition = \"dynamodb\"");
    for (name, words) in [
        ("", "such as `retry_partition"),
        ("  ", "such as `retry_partition"),
        (" dynamodb", "write `dynamodb`"),
    ] {
        let bad = text.replacen("\"dynamodb\"", &format!("\"{name}\""), 1);
        let e = parse_error(&bad);
        assert_eq!(e.field, "dependency.orders.retry_partition", "{e}");
        assert_eq!((e.file.as_str(), e.line), ("partition.toml", line), "{e}");
        assert!(e.message.contains(words), "{e}");
    }
    // The builder form gets the same check, by path.
    let mut b = ScenarioBuilder::new("partition", "api");
    b.requests(1)
        .function(Function::new("api", vec![Step::call("db").step()]))
        .dependency(
            Dependency::new("db", LatencyDist::constant(Duration::from_millis(1)))
                .with_retry_partition(""),
        );
    let e = b.build().map(|_| ()).expect_err("empty partition");
    assert!(
        e.to_string().contains("dependency.db.retry_partition"),
        "{e}"
    );
}

#[test]
fn calls_sharing_a_partition_must_agree_on_the_quota_scope() {
    let text = two_tables(Partitions::Shared, "environment", "10m").replacen(
        "call = \"carts\", retry = \"sdk_standard\", quota_scope = \"environment\"",
        "call = \"carts\", retry = \"sdk_standard\", quota_scope = \"function\"",
        1,
    );
    let e = parse_error(&text);
    assert_eq!(e.field, "function.api.handler.1.quota_scope", "{e}");
    assert_eq!(e.line, line_of(&text, "call = \"carts\""), "{e}");
    assert!(
        e.message.contains("retry partition `dynamodb`")
            && e.message.contains("quota_scope = \"environment\""),
        "{e}"
    );
    // Without a shared partition the two calls keep two clients: no conflict.
    let per_table = two_tables(Partitions::PerTable, "environment", "10m").replacen(
        "call = \"carts\", retry = \"sdk_standard\", quota_scope = \"environment\"",
        "call = \"carts\", retry = \"sdk_standard\", quota_scope = \"function\"",
        1,
    );
    assert!(scenario::parse(&per_table, "partition.toml").is_ok());
}
