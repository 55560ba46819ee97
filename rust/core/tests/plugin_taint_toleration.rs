//! TaintToleration: NoSchedule taints filter, PreferNoSchedule ones steer away.

mod common;
use common::resources::{node, pod};
use common::{placed_on, reason, run, snap};

#[test]
fn taints_and_tolerations_docs_example() {
    let taint = r#""taints":[{"key":"key1","value":"value1","effect":"NoSchedule"}]"#;
    let tolerates = r#""tolerations":[{"key":"key1","operator":"Equal","value":"value1","effect":"NoSchedule"}],"#;
    let exists = r#""tolerations":[{"key":"key1","operator":"Exists","effect":"NoSchedule"}],"#;
    let s = snap(&[
        node("n1", "4", "8Gi", taint),
        pod("plain", "1", "1Gi", ""),
        pod("equal", "1", "1Gi", tolerates),
        pod("exists", "1", "1Gi", exists),
    ]);
    let pl = run(&s);
    assert_eq!(
        reason(&s, &pl, "default/plain"),
        "0/1 nodes are available: 1 node(s) had untolerated taint {key1: value1}."
    );
    assert_eq!(placed_on(&s, &pl, "default/equal").as_deref(), Some("n1"));
    assert_eq!(placed_on(&s, &pl, "default/exists").as_deref(), Some("n1"));
}

#[test]
fn prefer_no_schedule_steers_away() {
    let soft = r#""taints":[{"key":"spot","value":"true","effect":"PreferNoSchedule"}]"#;
    // Identical nodes but for the soft taint; the untainted one wins (TaintToleration weight 3).
    let s = snap(&[
        node("a-spot", "4", "8Gi", soft),
        node("b", "4", "8Gi", ""),
        pod("p", "1", "1Gi", ""),
    ]);
    assert_eq!(placed_on(&s, &run(&s), "default/p").as_deref(), Some("b"));
}
