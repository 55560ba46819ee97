//! GpuPacking: keep whole GPUs and whole nodes free by preferring, in this order (the simulator's
//! `gpu_packing_score.go`):
//! 1. devices already shared: 100 − (Σ free % of the devices the pod would use) / 10, at least 50;
//! 2. free devices on a node already in use: 50 − the number of free devices used, at least 33;
//! 3. an idle node: 33 − its device count (never below that count).
//!
//! A pod without GPUs scores 0 everywhere. Not normalised. Devices: best fit.

use super::{best_fit_devices, gpu_free};
use crate::model::gpu::{DeviceMask, DEVICE_MILLI};
use crate::schedule::framework::{Cycle, CycleData, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::NodeId;

pub struct GpuPacking;

/// The score of a node with `free` milli per device for `count` devices of `milli` each
/// (`count` > 0); `None` when they do not fit.
pub fn packing_score(free: &[u32], count: u32, milli: u32) -> Option<i64> {
    let fully_free = free.iter().filter(|&&f| f == DEVICE_MILLI).count();
    if fully_free == free.len() {
        let score = MAX_NODE_SCORE / 3 - fully_free as i64;
        return Some(score.max(fully_free as i64));
    }
    // The fullest devices that fit first (a stable sort: lowest index among equals).
    let mut order: Vec<usize> = (0..free.len()).collect();
    order.sort_by_key(|&i| free[i]);
    let mut need = count;
    let mut whole_used = 0i64;
    let mut shared_free_pct = 0i64;
    for i in order {
        if need == 0 {
            break;
        }
        if milli <= free[i] {
            need -= 1;
            shared_free_pct += i64::from(free[i]) * 100 / i64::from(DEVICE_MILLI);
            if free[i] == DEVICE_MILLI {
                whole_used += 1;
            }
        }
    }
    if need != 0 {
        return None;
    }
    if whole_used > 0 {
        return Some((MAX_NODE_SCORE / 2 - whole_used).max(MAX_NODE_SCORE / 3));
    }
    Some((MAX_NODE_SCORE - shared_free_pct / 10).max(MAX_NODE_SCORE / 2))
}

impl ScorePlugin for GpuPacking {
    fn name(&self) -> &'static str {
        "GpuPacking"
    }

    fn score(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> i64 {
        if cx.gpu.is_none() {
            return 0;
        }
        packing_score(gpu_free(cx, node), cx.gpu.count, cx.gpu.milli).unwrap_or(0)
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
    fn three_tiers_by_hand() {
        // Idle 8-GPU node: 33 − 8; idle 1-GPU node: 32.
        assert_eq!(packing_score(&[1000; 8], 1, 500), Some(25));
        assert_eq!(packing_score(&[1000], 1, 500), Some(32));
        // Shared device with 600 free: 100 − 60/10 = 94.
        assert_eq!(packing_score(&[1000, 600], 1, 500), Some(94));
        // Must break a whole device on a used node: 50 − 1; two whole devices: 48.
        assert_eq!(packing_score(&[1000, 300], 1, 500), Some(49));
        assert_eq!(packing_score(&[1000, 1000, 300], 2, 1000), Some(48));
        assert_eq!(packing_score(&[300, 200], 1, 500), None);
    }

    #[test]
    fn prefers_the_shared_device() {
        let snap = cluster(
            &[node(96_000, 8), node(96_000, 8), node(96_000, 2)],
            &[(1000, GpuDemand::share(400), 1, "5")],
            &[(1000, GpuDemand::share(500)), (1000, GpuDemand::NONE)],
        );
        with_cycle(&snap, pending(&snap, 0), |cx| {
            let p = GpuPacking;
            let s: Vec<i64> = (0..3).map(|n| p.score(cx, &None, n)).collect();
            assert_eq!(s, [25, 94, 31]);
            assert_eq!(p.choose_devices(cx, 1), Some(1 << 5));
        });
        with_cycle(&snap, pending(&snap, 1), |cx| {
            assert_eq!(GpuPacking.score(cx, &None, 1), 0);
        });
    }
}
