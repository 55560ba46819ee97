//! NodeResourcesBalancedAllocation: a node whose cpu and memory would be used in equal
//! proportion scores higher, `(1 − std of the fractions) × 100`; best-effort pods are not scored.

mod common;
use common::resources::{node, pod};
use common::{placed_on, run_with, scores, snap};
use kube_engine_core::schedule::plugins::balanced_allocation::BalancedAllocation;
use kube_engine_core::schedule::profile::profiles_from_json;

#[test]
fn balanced_scores_hand_computed() {
    // Both nodes 8 cpu / 8Gi; a has 3 cpu / 3Gi in use, b 0 cpu / 4Gi. Pod: 1 cpu / 1Gi.
    // a: fractions 4/8 and 4/8, std 0 -> 100; b: 1/8 and 5/8, std |0.125 − 0.625| / 2 = 0.25
    // -> 75. (LeastAllocated would prefer b: (87 + 37) / 2 = 62 against 50.)
    let s = snap(&[
        node("a", "8", "8Gi", ""),
        node("b", "8", "8Gi", ""),
        pod("on-a", "3", "3Gi", r#""nodeName":"a","#),
        pod("on-b", "0", "4Gi", r#""nodeName":"b","#),
        pod("p", "1", "1Gi", ""),
        pod("best-effort", "0", "0", ""),
    ]);
    let plugin = BalancedAllocation::new(Default::default());
    let (raw, normalized) = scores(&s, &plugin, "default/p", &["a", "b"]).unwrap();
    assert_eq!(raw, [100, 75]);
    // No NormalizeScore: the scores are final.
    assert_eq!(normalized, raw);
    assert!(scores(&s, &plugin, "default/best-effort", &["a", "b"]).is_none());

    let cfg = r#"{"profiles":[{"plugins":{"score":{"disabled":[{"name":"*"}],
        "enabled":[{"name":"NodeResourcesBalancedAllocation","weight":1}]}}}]}"#;
    let pl = run_with(&s, &profiles_from_json(cfg).unwrap());
    assert_eq!(placed_on(&s, &pl, "default/p").as_deref(), Some("a"));
}
