//! The scheduling framework, arranged like kube-scheduler's: per pod a cycle runs PreFilter, then
//! Filter over nodes until enough feasible ones are found, then PreScore, Score and NormalizeScore
//! over those, a weighted sum, and a seeded random choice among the best (selectHost).
//!
//! Plugins are small and named; per-cycle data a plugin computes once lives in the cycle, and the
//! hot per-node calls read it. A filter rejects with a plugin-specific code; reasons are rendered
//! as text only for pods that end up unschedulable.
//!
//! By what they hold: `interface` (the plugin interfaces and the profile), `cycle` (what a cycle
//! knows), the caches a scheduler keeps between cycles (`statics` per group of pods,
//! `demand_cache` per resource demand), `schedule_one` (the cycle and selectHost), `diagnosis`
//! (FitError), `explain` (one cycle's every verdict and score), `threads` (when to split work over the thread pool) and `rng`.

mod cycle;
mod demand_cache;
mod diagnosis;
mod explain;
mod interface;
mod rng;
mod schedule_one;
mod statics;
mod threads;

pub use super::divider::Divider;
pub use cycle::{Cycle, CycleData};
pub use diagnosis::FitError;
pub use explain::{Explanation, Rejection};
pub use interface::{
    add_weighted_scores, default_normalize, FilterPlugin, PreFilter, PreScore, Profile, Reason,
    ScorePlugin, MAX_NODE_SCORE,
};
pub use rng::Rng;
pub use schedule_one::{feasible_nodes_to_find, Scheduler, TieBreak};
