//! NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory (or configured resources)
//! would be used in equal proportion: score = (1 − std of the fractions) × 100. Best-effort pods
//! are not scored (upstream skips them so they do not pile onto one node).
//!
//! `nvidia.com/gpu` among the configured resources counts as upstream counts any scalar
//! resource: whole GPUs requested over the node's devices. GPUs are kept as devices rather than
//! in the resource vectors, so its fraction is worked out from them; a GPU share
//! (`kube-engine.io/gpu-milli`) asks for no `nvidia.com/gpu`.

use std::sync::Arc;

use serde::Deserialize;

use super::node_resources_fit::ResourceSpec;
use crate::model::gpu::{DEVICE_MILLI, GPU_RESOURCE};
use crate::resources::{CPU, EPHEMERAL_STORAGE, MEMORY};
use crate::schedule::framework::{Cycle, CycleData, PreScore, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::NodeId;

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BalancedArgs {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub resources: Option<Vec<ResourceSpec>>,
}

pub struct BalancedAllocation {
    resources: Vec<String>,
}

impl BalancedAllocation {
    pub fn new(args: BalancedArgs) -> Self {
        let resources = args
            .resources
            .map(|r| r.into_iter().map(|s| s.name).collect())
            .unwrap_or_else(|| vec!["cpu".to_string(), "memory".to_string()]);
        BalancedAllocation { resources }
    }
}

/// `(1 - std) * 100` over the fractions, each capped at 1.
pub fn balanced_score(fractions: &[f64]) -> i64 {
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => std_of_two(fractions[0], fractions[1]),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
    };
    score_of_std(std)
}

/// The standard deviation of two fractions, as upstream computes it.
#[inline(always)]
fn std_of_two(f0: f64, f1: f64) -> f64 {
    ((f0 - f1) / 2.0).abs()
}

#[inline(always)]
fn score_of_std(std: f64) -> i64 {
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// `(used + request) / capacity` (capacity not 0, the others never negative), capped at 1. A sum
/// past `i64::MAX` is past any capacity: where it wraps, the fraction is 1.
#[inline(always)]
fn fraction_of_sum(used: i64, request: i64, capacity: i64) -> f64 {
    let sum = used.wrapping_add(request);
    if sum < 0 {
        1.0
    } else {
        fraction(sum, capacity)
    }
}

/// `used / capacity` (capacity not 0), capped at 1.
#[inline(always)]
fn fraction(used: i64, capacity: i64) -> f64 {
    let f = used as f64 / capacity as f64;
    // Never NaN (capacity is not 0), so this is `f.min(1.0)`, in one instruction.
    if f > 1.0 {
        1.0
    } else {
        f
    }
}

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }

    fn node_local(&self) -> bool {
        true
    }

    fn pre_score(&self, cx: &Cycle, _: &[NodeId]) -> PreScore {
        let demand = cx.snap.pods.gpu[cx.p()];
        let gpus = if demand.milli == DEVICE_MILLI {
            i64::from(demand.count)
        } else {
            0
        };
        // In the configured order: the fractions are summed in it.
        let ids: Vec<(usize, i64)> = self
            .resources
            .iter()
            .filter_map(|name| {
                if name == GPU_RESOURCE {
                    Some((GPUS, gpus))
                } else {
                    cx.snap.resources.get(name).map(|r| (r, cx.request[r]))
                }
            })
            .collect();
        if ids.iter().all(|&(_, req)| req == 0) {
            return PreScore::Skip;
        }
        PreScore::Run(Some(Arc::new(ids)))
    }

    fn score(&self, cx: &Cycle, data: &CycleData, node: NodeId) -> i64 {
        score_node(cx, ids(data), node)
    }

    fn score_all(&self, cx: &Cycle, data: &CycleData, nodes: &[NodeId], out: &mut [i64]) {
        let ids = ids(data);
        // The default, cpu then memory: one straight pass over the nodes' rooms, the same
        // arithmetic as `score_node` without its lists, wherever both have capacity.
        if let [(CPU, q0), (MEMORY, q1)] = *ids {
            let st = cx.state;
            for (o, &node) in out.iter_mut().zip(nodes) {
                let n = node as usize;
                let room = &st.room[n];
                let [c0, c1] = room.allocatable;
                *o = if c0 == 0 || c1 == 0 {
                    score_node(cx, ids, node)
                } else {
                    let [u0, u1] = room.requested;
                    let f0 = fraction_of_sum(u0, q0, c0);
                    let f1 = fraction_of_sum(u1, q1, c1);
                    score_of_std(std_of_two(f0, f1))
                };
            }
            return;
        }
        for (o, &n) in out.iter_mut().zip(nodes) {
            *o = score_node(cx, ids, n);
        }
    }
}

/// The slot of `nvidia.com/gpu` among a pod's requests: GPUs are devices, not in the vectors.
const GPUS: usize = usize::MAX;

fn ids(data: &CycleData) -> &[(usize, i64)] {
    data.as_ref()
        .and_then(|d| d.downcast_ref::<Vec<(usize, i64)>>())
        .expect("pre_score")
}

/// Whole GPUs the pods on `node` request (`nvidia.com/gpu`; shares are another resource).
fn gpus_requested(cx: &Cycle, node: NodeId) -> i64 {
    cx.state.pods_on[node as usize]
        .iter()
        .map(|&q| cx.snap.pods.gpu[q as usize])
        .filter(|d| d.milli == DEVICE_MILLI)
        .map(|d| i64::from(d.count))
        .sum()
}

fn score_node(cx: &Cycle, ids: &[(usize, i64)], node: NodeId) -> i64 {
    {
        let n = node as usize;
        let mut fractions = [0f64; 8];
        let mut k = 0;
        let mut more = Vec::new();
        for &(r, req) in ids {
            if r == GPUS && req == 0 {
                continue; // an extended resource the pod does not ask for
            }
            let (used, capacity) = if r == GPUS {
                (
                    gpus_requested(cx, node),
                    i64::from(cx.snap.nodes.gpu_devices[n]),
                )
            } else {
                (
                    cx.state.requested.get(n, r),
                    cx.snap.nodes.allocatable.get(n, r),
                )
            };
            // Extended resources the pod does not ask for do not count.
            if capacity == 0 || (req == 0 && r > EPHEMERAL_STORAGE) {
                continue;
            }
            let f = fraction_of_sum(used, req, capacity);
            if k < fractions.len() {
                fractions[k] = f;
                k += 1;
            } else {
                more.push(f);
            }
        }
        if more.is_empty() {
            balanced_score(&fractions[..k])
        } else {
            more.extend_from_slice(&fractions[..k]);
            balanced_score(&more)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        assert_eq!(balanced_score(&[0.5, 0.5]), 100);
        assert_eq!(balanced_score(&[0.2, 0.6]), 80);
        assert_eq!(balanced_score(&[1.0, 0.0]), 50);
        // Three resources: std of (0.1, 0.4, 0.7) = 0.2449 -> 75.
        assert_eq!(balanced_score(&[0.1, 0.4, 0.7]), 75);
    }

    #[test]
    fn fractions_are_capped_at_one_even_past_i64_max() {
        assert_eq!(fraction_of_sum(30, 20, 100), 0.5);
        assert_eq!(fraction_of_sum(90, 20, 100), 1.0);
        assert_eq!(fraction_of_sum(i64::MAX - 1, 10, i64::MAX), 1.0);
        assert_eq!(fraction_of_sum(i64::MAX, i64::MAX, 7), 1.0);
    }
}
