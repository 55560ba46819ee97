//! Random: a feasible node drawn uniformly (the simulator's `random_score.go` gives one drawn node
//! 100 and the others 0), and for a GPU share a device drawn uniformly among those it fits
//! (`allocateGpuIdBasedOnRandomFit`); whole devices are the lowest-indexed free ones.
//!
//! Draws come from the plugin's `seed` (args `{"seed": n}`), the pod and what is drawn, so the
//! plugin keeps no state and a run is reproducible.

use std::sync::Arc;

use serde::Deserialize;

use super::{best_fit_devices, decision_rng, is_share};
use crate::model::gpu::DeviceMask;
use crate::schedule::framework::{Cycle, CycleData, PreScore, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::NodeId;

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RandomArgs {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub seed: u64,
}

pub struct Random {
    seed: u64,
}

impl Random {
    pub fn new(args: RandomArgs) -> Self {
        Random { seed: args.seed }
    }
}

impl ScorePlugin for Random {
    fn name(&self) -> &'static str {
        "Random"
    }

    fn pre_score(&self, cx: &Cycle, nodes: &[NodeId]) -> PreScore {
        if nodes.is_empty() {
            return PreScore::Skip;
        }
        let i = decision_rng(self.seed, cx, 0).below(nodes.len() as u64) as usize;
        PreScore::Run(Some(Arc::new(nodes[i])))
    }

    fn score(&self, _: &Cycle, data: &CycleData, node: NodeId) -> i64 {
        let drawn = data.as_ref().and_then(|d| d.downcast_ref::<NodeId>());
        if drawn == Some(&node) {
            MAX_NODE_SCORE
        } else {
            0
        }
    }

    fn choose_devices(&self, cx: &Cycle, node: NodeId) -> Option<DeviceMask> {
        if !is_share(cx) {
            return best_fit_devices(cx, node);
        }
        let free = &cx.state.gpu_free[node as usize];
        let fitting: Vec<usize> = (0..free.len())
            .filter(|&i| free[i] >= cx.gpu.milli)
            .collect();
        if fitting.is_empty() {
            return None;
        }
        let mut rng = decision_rng(self.seed, cx, 1 + u64::from(node));
        Some(1 << fitting[rng.below(fitting.len() as u64) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{cluster, node, pending, with_cycle};
    use super::*;
    use crate::model::gpu::GpuDemand;

    #[test]
    fn one_node_drawn_uniformly_and_reproducibly() {
        let nodes: Vec<_> = (0..4).map(|_| node(8000, 4)).collect();
        let pods: Vec<_> = (0..400).map(|_| (100, GpuDemand::share(500))).collect();
        let snap = cluster(&nodes, &[], &pods);
        let p = Random::new(RandomArgs {
            seed: 7,
            ..RandomArgs::default()
        });
        let mut counts = [0; 4];
        let mut devices = [0; 4];
        for i in 0..400 {
            with_cycle(&snap, pending(&snap, i), |cx| {
                let data = match p.pre_score(cx, &[0, 1, 2, 3]) {
                    PreScore::Run(d) => d,
                    PreScore::Skip => unreachable!(),
                };
                let s: Vec<i64> = (0..4).map(|n| p.score(cx, &data, n)).collect();
                assert_eq!(s.iter().sum::<i64>(), 100);
                counts[s.iter().position(|&x| x == 100).unwrap()] += 1;
                let d = p.choose_devices(cx, 0).unwrap();
                devices[d.trailing_zeros() as usize] += 1;
                // Same seed, same pod: same draws.
                assert_eq!(p.choose_devices(cx, 0), Some(d));
            });
        }
        assert!(counts.iter().all(|&c| (60..140).contains(&c)), "{counts:?}");
        assert!(
            devices.iter().all(|&c| (60..140).contains(&c)),
            "{devices:?}"
        );
    }
}
