use super::*;

#[test]
fn no_allow_list_allows_every_environment() {
    let guard = Guard::builder().environment(None).build();
    assert!(guard.is_allowed());
    assert_eq!(guard.mode(), GuardMode::Inject);
}

#[test]
fn a_listed_environment_injects_and_others_do_not() {
    let allow = ["staging", " dev "];
    let staging = Guard::builder()
        .allow_environments(allow)
        .environment(Some("staging"))
        .build();
    assert_eq!(staging.mode(), GuardMode::Inject);
    let dev = Guard::builder()
        .allow_environments(allow)
        .environment(Some(" dev"))
        .build();
    assert_eq!(dev.mode(), GuardMode::Inject);
    for environment in [Some("prod"), Some("Staging"), Some(""), None] {
        let guard = Guard::builder()
            .allow_environments(allow)
            .environment(environment)
            .build();
        assert_eq!(guard.mode(), GuardMode::Off, "{environment:?}");
    }
}

#[test]
fn an_empty_allow_list_allows_nothing() {
    let guard = Guard::builder()
        .allow_environments(Vec::<String>::new())
        .environment(Some("staging"))
        .build();
    assert_eq!(guard.mode(), GuardMode::Off);
}

#[test]
fn dry_run_decides_but_an_unlisted_environment_stays_off() {
    let on = Guard::builder()
        .dry_run(true)
        .environment(Some("dev"))
        .build();
    assert_eq!(on.mode(), GuardMode::DryRun);
    on.count_dry_run(true);
    on.count_dry_run(false);
    assert_eq!(on.dry_run_counts(), (2, 1));
    let off = Guard::builder()
        .dry_run(true)
        .allow_environments(["dev"])
        .environment(Some("prod"))
        .build();
    assert_eq!(off.mode(), GuardMode::Off);
}
