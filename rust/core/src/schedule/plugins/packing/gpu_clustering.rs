//! GpuClustering: keep pods of one GPU shape together (the simulator's `gpu_clustering_score.go`).
//! A pod's shape is "a share of one GPU" or "k whole GPUs". Among feasible nodes, by tier:
//! a node running only pods of the pod's shape (75, 100], a node running that shape among others
//! (50, 75], an idle node (25, 50], a node running other shapes only [0, 25]; within a tier the
//! more GPU already used the better: 25 · (8000 − free GPU milli) / 8000, in integers. Pods without
//! GPUs (and pods without GPUs on a node) are not counted; such a pod scores 0. Not normalised.
//! Devices: best fit.

use super::{best_fit_devices, gpu_free, gpu_left_total, MAX_SPEC_GPU};
use crate::model::gpu::{DeviceMask, GpuDemand, DEVICE_MILLI};
use crate::schedule::framework::{Cycle, CycleData, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::NodeId;

pub struct GpuClustering;

/// A GPU pod's shape: `0` for a share of one device, else the number of whole devices.
fn shape(d: GpuDemand) -> Option<u32> {
    if d.is_none() {
        None
    } else if d.count == 1 && d.milli < DEVICE_MILLI {
        Some(0)
    } else {
        Some(d.count)
    }
}

/// The score for a pod of `mine` on a node whose GPU pods have `shapes` (with repetition) and
/// `free` GPU milli in all.
pub fn clustering_score(mine: u32, shapes: impl IntoIterator<Item = u32>, free: i64) -> i64 {
    let (mut same, mut others) = (false, false);
    for s in shapes {
        if s == mine {
            same = true;
        } else {
            others = true;
        }
    }
    let tier = match (same, others) {
        (true, false) => 3,
        (true, true) => 2,
        (false, false) => 1,
        (false, true) => 0,
    };
    let spec = MAX_SPEC_GPU as i64;
    MAX_NODE_SCORE / 4 * (spec - free) / spec + MAX_NODE_SCORE * tier / 4
}

impl ScorePlugin for GpuClustering {
    fn name(&self) -> &'static str {
        "GpuClustering"
    }

    fn score(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> i64 {
        let Some(mine) = shape(cx.gpu) else {
            return 0;
        };
        let gpu = &cx.snap.pods.gpu;
        let shapes = cx.state.pods_on[node as usize]
            .iter()
            .filter_map(|&p| shape(gpu[p as usize]));
        clustering_score(mine, shapes, gpu_left_total(gpu_free(cx, node)))
    }

    fn choose_devices(&self, cx: &Cycle, node: NodeId) -> Option<DeviceMask> {
        best_fit_devices(cx, node)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{cluster, node, pending, with_cycle};
    use super::*;

    #[test]
    fn tiers_by_hand() {
        // Same shape only, 6000 milli free of 8: 25·2000/8000 + 75 = 81.
        assert_eq!(clustering_score(0, [0, 0], 6000), 81);
        assert_eq!(clustering_score(0, [0, 2], 6000), 56);
        assert_eq!(clustering_score(0, [], 8000), 25);
        assert_eq!(clustering_score(0, [2], 6000), 6);
        // Go and Rust both truncate toward zero: a 16-GPU node with 9000 free.
        assert_eq!(clustering_score(1, [], 9000), 25 + 25 * -1000 / 8000);
    }

    #[test]
    fn groups_shares_with_shares() {
        // n0 runs a share pod, n1 a 2-GPU pod, n2 a CPU-only pod, n3 nothing.
        let snap = cluster(
            &[
                node(96_000, 8),
                node(96_000, 8),
                node(96_000, 8),
                node(96_000, 8),
            ],
            &[
                (1000, GpuDemand::share(500), 0, "0"),
                (1000, GpuDemand::whole(2), 1, "0,1"),
                (1000, GpuDemand::NONE, 2, ""),
            ],
            &[(1000, GpuDemand::share(300))],
        );
        with_cycle(&snap, pending(&snap, 0), |cx| {
            let s: Vec<i64> = (0..4).map(|n| GpuClustering.score(cx, &None, n)).collect();
            // n0: 25·500/8000 + 75 = 76; n1: 25·2000/8000 + 0 = 6; n2, n3: idle tier 25.
            assert_eq!(s, [76, 6, 25, 25]);
        });
    }
}
