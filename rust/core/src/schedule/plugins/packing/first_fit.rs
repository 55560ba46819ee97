//! FirstFit: the first feasible node in the snapshot's node order, and there the lowest-indexed
//! devices that fit. (The simulator's `first_fit_score.go` scores every node 100 and so leaves the
//! choice to selectHost's random tie-break; this is the classic first fit instead.)

use std::sync::Arc;

use crate::model::gpu::DeviceMask;
use crate::schedule::framework::{Cycle, CycleData, PreScore, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::NodeId;

pub struct FirstFit;

/// The lowest-indexed devices of `free` that fit `count` × `milli`.
pub fn first_fit_devices(free: &[u32], count: u32, milli: u32) -> Option<DeviceMask> {
    let mut mask: DeviceMask = 0;
    let mut need = count;
    for (i, &f) in free.iter().enumerate() {
        if need == 0 {
            break;
        }
        if f >= milli {
            mask |= 1 << i;
            need -= 1;
        }
    }
    (need == 0).then_some(mask)
}

impl ScorePlugin for FirstFit {
    fn name(&self) -> &'static str {
        "FirstFit"
    }

    fn pre_score(&self, _: &Cycle, nodes: &[NodeId]) -> PreScore {
        PreScore::Run(nodes.iter().min().map(|&n| Arc::new(n) as _))
    }

    fn score(&self, _: &Cycle, data: &CycleData, node: NodeId) -> i64 {
        let first = data.as_ref().and_then(|d| d.downcast_ref::<NodeId>());
        if first == Some(&node) {
            MAX_NODE_SCORE
        } else {
            0
        }
    }

    fn choose_devices(&self, cx: &Cycle, node: NodeId) -> Option<DeviceMask> {
        first_fit_devices(
            &cx.state.gpu_free[node as usize],
            cx.gpu.count,
            cx.gpu.milli,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{cluster, node, pending, with_cycle};
    use super::*;
    use crate::model::gpu::GpuDemand;

    #[test]
    fn first_node_first_devices() {
        assert_eq!(first_fit_devices(&[200, 1000, 600], 1, 500), Some(0b010));
        assert_eq!(first_fit_devices(&[1000, 0, 1000], 2, 1000), Some(0b101));
        assert_eq!(first_fit_devices(&[1000, 0], 2, 1000), None);
        let snap = cluster(
            &[node(8000, 2), node(8000, 2), node(8000, 2)],
            &[(1000, GpuDemand::share(700), 1, "0")],
            &[(1000, GpuDemand::share(200))],
        );
        with_cycle(&snap, pending(&snap, 0), |cx| {
            let data = match FirstFit.pre_score(cx, &[2, 1]) {
                PreScore::Run(d) => d,
                PreScore::Skip => panic!("FirstFit scores"),
            };
            let s: Vec<i64> = [2, 1]
                .iter()
                .map(|&n| FirstFit.score(cx, &data, n))
                .collect();
            assert_eq!(s, [0, 100]);
            // Device 0 has 300 free: first fit takes it (best fit would too; worst fit not).
            assert_eq!(FirstFit.choose_devices(cx, 1), Some(0b01));
        });
    }
}
