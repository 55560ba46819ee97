//! DotProduct (Tetris, Grandl et al., SIGCOMM '14), as the FGD simulator configures it for the
//! paper (`dot_product_score.go` with `dimExtMethod: merge`, `normMethod: max`): the node's free
//! (CPU, all GPU milli) and the pod's request, each divided by the largest node spec, dotted and
//! halved into [0, 1]; the score is ⌊(1 − that) · 100⌋ — the *smaller* the alignment with what is
//! free, the better, which packs pods onto nodes with little left. A node without the CPU for the
//! pod scores 0. Not normalised. Devices: best fit.

use super::{
    best_fit_devices, cpu_left, gpu_free, gpu_left_total, pod_cpu, MAX_SPEC_CPU, MAX_SPEC_GPU,
};
use crate::model::gpu::DeviceMask;
use crate::schedule::framework::{Cycle, CycleData, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::NodeId;

pub struct DotProduct;

/// The score for `free` = (CPU left, GPU milli left) and `request` = (CPU, GPU milli).
pub fn dot_product_score(free: [f64; 2], request: [f64; 2]) -> i64 {
    if free[0] < request[0] {
        return 0;
    }
    let spec = [MAX_SPEC_CPU, MAX_SPEC_GPU];
    let mut dot = 0.0;
    for i in 0..2 {
        dot += (free[i] / spec[i]) * (request[i] / spec[i]);
    }
    let score = 1.0 - dot / 2.0;
    // The simulator keeps the best of its candidates, starting from −1.
    if score <= -1.0 {
        return 0;
    }
    (MAX_NODE_SCORE as f64 * score) as i64
}

impl ScorePlugin for DotProduct {
    fn name(&self) -> &'static str {
        "DotProduct"
    }

    fn score(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> i64 {
        let free = [
            cpu_left(cx, node) as f64,
            gpu_left_total(gpu_free(cx, node)) as f64,
        ];
        dot_product_score(free, [pod_cpu(cx) as f64, cx.gpu.total_milli() as f64])
    }

    fn choose_devices(&self, cx: &Cycle, node: NodeId) -> Option<DeviceMask> {
        best_fit_devices(cx, node)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{cluster, node, pending, with_cycle};
    use super::*;
    use crate::model::gpu::GpuDemand;

    #[test]
    fn score_by_hand() {
        // Empty 128-core 8-GPU node, pod with 64 cores and 4 GPUs: dot = 1·½ + 1·½ = 1 → 1 − ½.
        assert_eq!(dot_product_score([128e3, 8e3], [64e3, 4e3]), 50);
        // Half-used node: dot = ½·½ + ½·½ = ½ → 1 − ¼ = 75.
        assert_eq!(dot_product_score([64e3, 4e3], [64e3, 4e3]), 75);
        // Not enough CPU.
        assert_eq!(dot_product_score([1e3, 8e3], [2e3, 1e3]), 0);
    }

    #[test]
    fn prefers_the_node_with_less_free() {
        let snap = cluster(
            &[node(96_000, 8), node(32_000, 2)],
            &[],
            &[(8000, GpuDemand::whole(1))],
        );
        with_cycle(&snap, pending(&snap, 0), |cx| {
            let p = DotProduct;
            // n0: (.75·.0625 + 1·.125)/2 = .0859 → 91; n1: (.25·.0625 + .25·.125)/2 = .0234 → 97.
            assert_eq!([p.score(cx, &None, 0), p.score(cx, &None, 1)], [91, 97]);
            assert_eq!(p.choose_devices(cx, 1), Some(0b01));
        });
    }
}
