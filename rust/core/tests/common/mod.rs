//! Helpers shared by the placement test files.

use kube_engine_core::place::framework::Profile;
use kube_engine_core::place::profile::default_profile;
use kube_engine_core::place::{schedule, Order, Placement};
use kube_engine_core::Snapshot;

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
