//! Helpers shared by the placement test files: cluster builders, running a schedule and reading
//! its result, and running one plugin's extension points in a cycle.
//!
//! Every test file compiles this module on its own and uses only a part of it.
#![allow(dead_code)]

pub mod reference;
pub mod resources;
pub mod topology;

use kube_engine_core::schedule::framework::{
    Cycle, FilterPlugin, PreFilter, PreScore, Profile, ScorePlugin,
};
use kube_engine_core::schedule::profile::default_profile;
use kube_engine_core::schedule::state::ClusterState;
use kube_engine_core::schedule::{schedule, Order, Placement};
use kube_engine_core::snapshot::parse_documents;
use kube_engine_core::Snapshot;

/// A snapshot of `items` (objects as JSON) in one `List`.
pub fn snap(items: &[String]) -> Snapshot {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    parse_documents(&[doc.as_bytes()]).unwrap()
}

/// Every pending pod, in input order, with the default profile.
pub fn run(s: &Snapshot) -> Placement {
    run_with(s, &[default_profile()])
}

pub fn run_with(s: &Snapshot, profiles: &[Profile]) -> Placement {
    schedule(s, None, profiles, Order::Input, 0).unwrap()
}

/// The node `pod` (namespace/name) was placed on.
pub fn placed_on(s: &Snapshot, pl: &Placement, pod: &str) -> Option<String> {
    let p = s.pods.id(pod).unwrap();
    pl.placed
        .iter()
        .find(|x| x.0 == p)
        .map(|x| s.nodes.name[x.1 as usize].clone())
}

/// Why `pod` could not be placed ("" when it was).
pub fn reason(s: &Snapshot, pl: &Placement, pod: &str) -> String {
    let p = s.pods.id(pod).unwrap();
    pl.unschedulable
        .iter()
        .find(|x| x.0 == p)
        .map(|x| x.1.to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Running plugins

/// Runs `f` in a cycle of `pod` against the snapshot's own placement.
pub fn with_cycle<R>(s: &Snapshot, pod: &str, f: impl FnOnce(&Cycle) -> R) -> R {
    let state = ClusterState::new(s, &s.current);
    let p = s.pods.id(pod).unwrap();
    let cx = Cycle::new(&state, p);
    f(&cx)
}

/// The plugin's verdict on every node, in node order ("ok" or the reason); `None` when PreFilter
/// skips the plugin.
pub fn verdicts(s: &Snapshot, plugin: &dyn FilterPlugin, pod: &str) -> Option<Vec<String>> {
    with_cycle(s, pod, |cx| {
        let data = match plugin.pre_filter(cx) {
            PreFilter::Run(d) => d,
            PreFilter::Skip => return None,
            PreFilter::Reject(m) => panic!("pre_filter rejected: {m}"),
        };
        let out = (0..s.nodes.len() as u32)
            .map(|n| match plugin.filter(cx, &data, n) {
                Ok(()) => "ok".to_string(),
                Err(code) => {
                    let mut why = Vec::new();
                    plugin.reasons(cx, &data, n, code, &mut why);
                    why.join("; ")
                }
            })
            .collect();
        Some(out)
    })
}

/// Raw and normalised scores of `nodes` (taken as the feasible ones); `None` when PreScore
/// skips the plugin.
pub fn scores(
    s: &Snapshot,
    plugin: &dyn ScorePlugin,
    pod: &str,
    nodes: &[&str],
) -> Option<(Vec<i64>, Vec<i64>)> {
    with_cycle(s, pod, |cx| {
        let ids: Vec<u32> = nodes.iter().map(|n| s.nodes.id(n).unwrap()).collect();
        let data = match plugin.pre_score(cx, &ids) {
            PreScore::Run(d) => d,
            PreScore::Skip => return None,
        };
        let raw: Vec<i64> = ids.iter().map(|&n| plugin.score(cx, &data, n)).collect();
        let mut normalized = raw.clone();
        plugin.normalize(cx, &data, &mut normalized);
        Some((raw, normalized))
    })
}

/// A node a filter passes, as [`verdicts`] shows it.
pub const OK: &str = "ok";
