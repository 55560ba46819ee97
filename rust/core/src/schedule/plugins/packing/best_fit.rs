//! BestFit: prefer the node left with the least CPU and GPU after placing the pod. The simulator's
//! `best_fit_score.go`: Σ over (CPU, GPU) of ½ · (free − request) / max spec is how much would be
//! left, in [0, 1]; the score is ⌊(1 − that) · 100⌋, then min–max normalised over the feasible
//! nodes. Devices: best fit (the fullest device a share fits).

use super::{
    best_fit_devices, cpu_left, gpu_free, gpu_left_total, min_max_normalize, pod_cpu, MAX_SPEC_CPU,
    MAX_SPEC_GPU,
};
use crate::model::gpu::DeviceMask;
use crate::schedule::framework::{Cycle, CycleData, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::NodeId;

pub struct BestFit;

/// The raw score for a node with `free` = (CPU left, GPU milli left) and a pod asking `request`;
/// `None` when the pod does not fit (the simulator errors out).
pub fn best_fit_score(free: [f64; 2], request: [f64; 2]) -> Option<i64> {
    const WEIGHTS: [f64; 2] = [0.5, 0.5];
    const SPEC: [f64; 2] = [MAX_SPEC_CPU, MAX_SPEC_GPU];
    let mut left = 0.0;
    for i in 0..2 {
        if free[i] < request[i] {
            return None;
        }
        left += (free[i] - request[i]) / SPEC[i] * WEIGHTS[i];
    }
    Some(((1.0 - left) * MAX_NODE_SCORE as f64) as i64)
}

impl ScorePlugin for BestFit {
    fn name(&self) -> &'static str {
        "BestFit"
    }

    fn score(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> i64 {
        let free = [
            cpu_left(cx, node) as f64,
            gpu_left_total(gpu_free(cx, node)) as f64,
        ];
        let request = [pod_cpu(cx) as f64, cx.gpu.total_milli() as f64];
        best_fit_score(free, request).unwrap_or(i64::MIN)
    }

    fn normalize(&self, _: &Cycle, _: &CycleData, scores: &mut [i64]) {
        min_max_normalize(scores);
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
        // 64 cores and 2 GPUs free, pod takes 32 cores and 1 GPU: left = ½·32/128 + ½·1/8
        // = 0.1875 → ⌊81.25⌋.
        assert_eq!(best_fit_score([64e3, 2e3], [32e3, 1e3]), Some(81));
        // An empty 128-core, 8-GPU node and a pod asking nothing: left = 1 → 0.
        assert_eq!(best_fit_score([128e3, 8e3], [0.0, 0.0]), Some(0));
        assert_eq!(best_fit_score([1e3, 0.0], [2e3, 0.0]), None);
    }

    #[test]
    fn prefers_the_fuller_node_and_the_fuller_device() {
        // n0: 8 GPUs, one device 700 used; n1: 2 GPUs, empty; pod: 4 cores + 0.25 GPU.
        let snap = cluster(
            &[node(96_000, 8), node(32_000, 2)],
            &[(1000, GpuDemand::share(700), 0, "3")],
            &[(4000, GpuDemand::share(250))],
        );
        with_cycle(&snap, pending(&snap, 0), |cx| {
            let p = BestFit;
            // n0: CPU left 95000 → 91000, GPU 7300 → 7050: left = .35547 + .44063 → 20.
            // n1: 32000 → 28000, 2000 → 1750: left = .10938 + .10938 → 78.
            let mut s = [p.score(cx, &None, 0), p.score(cx, &None, 1)];
            assert_eq!(s, [20, 78]);
            p.normalize(cx, &None, &mut s);
            assert_eq!(s, [0, 100]);
            // On n0 the share goes to device 3, the only partly used one.
            assert_eq!(p.choose_devices(cx, 0), Some(1 << 3));
        });
    }
}
