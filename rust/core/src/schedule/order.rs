//! The order in which a batch of pods is placed.

use crate::error::{quoted, ArgumentError, Error};
use crate::snapshot::{PodId, Snapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// kube-scheduler's queue (PrioritySort): higher priority first, then older first.
    Queue,
    /// Packing order: decreasing dominant share (the largest fraction of the cluster's
    /// allocatable, over resources and GPUs, that the pod asks for), as in vector bin packing.
    DominantShare,
    /// As given.
    Input,
}

impl Order {
    /// The order called `name` (the `order` argument of a schedule).
    pub fn parse(name: &str) -> Result<Order, Error> {
        match name {
            "queue" => Ok(Order::Queue),
            "dominant-share" => Ok(Order::DominantShare),
            "input" => Ok(Order::Input),
            other => Err(ArgumentError::invalid(
                "order",
                format!(
                    "unknown order {} (queue, dominant-share or input)",
                    quoted(other)
                ),
            )
            .into()),
        }
    }

    /// Sorts `pods`; ties keep their input order, so the result is deterministic.
    pub fn sort(self, snap: &Snapshot, mut pods: Vec<PodId>, _seed: u64) -> Vec<PodId> {
        let pods_col = &snap.pods;
        match self {
            Order::Input => {}
            Order::Queue => pods.sort_by_key(|&p| {
                let p = p as usize;
                (
                    std::cmp::Reverse(pods_col.priority[p]),
                    pods_col.created[p].unwrap_or(i64::MAX),
                )
            }),
            Order::DominantShare => {
                let n_res = snap.resources.len();
                let totals: Vec<f64> = (0..n_res)
                    .map(|r| {
                        (0..snap.nodes.len())
                            .map(|n| snap.nodes.allocatable.get(n, r) as f64)
                            .sum()
                    })
                    .collect();
                let gpu_total = snap.total_gpu_devices() as f64 * 1000.0;
                let share = |p: PodId| -> f64 {
                    let row = pods_col.requests.row(p as usize);
                    let mut best = 0f64;
                    for r in 0..n_res {
                        // The pods slot is not a resource anyone packs for.
                        if r != crate::resources::PODS && totals[r] > 0.0 {
                            best = best.max(row[r] as f64 / totals[r]);
                        }
                    }
                    if gpu_total > 0.0 {
                        best = best.max(pods_col.gpu[p as usize].total_milli() as f64 / gpu_total);
                    }
                    best
                };
                let mut keyed: Vec<(f64, PodId)> = pods.iter().map(|&p| (share(p), p)).collect();
                keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
                pods = keyed.into_iter().map(|(_, p)| p).collect();
            }
        }
        pods
    }
}
