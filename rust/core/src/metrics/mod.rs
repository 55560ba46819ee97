//! Placement quality: what a placement uses, how evenly, how fragmented its GPUs are, what it
//! violates, and how far it is from the fewest nodes that could possibly hold its pods.

pub mod bounds;
pub mod frag;
mod violations;

pub use violations::{inter_pod_count, InterPodCounter, Violation, ViolationKind};

use crate::hash::IdMap;
use crate::model::gpu::{self, GpuDemand, DEVICE_MILLI};
use crate::resources::ResourceMatrix;
use crate::snapshot::{Assignment, NodeId, PodId, Snapshot};

/// Use of one resource across the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceUse {
    pub name: String,
    /// Σ effective requests of active bound pods.
    pub requested: i64,
    /// Σ effective requests of active pending pods.
    pub pending: i64,
    pub allocatable: i64,
    /// requested / allocatable (0 when nothing is allocatable).
    pub utilisation: f64,
    /// Per-node utilisation over schedulable nodes (ready, not cordoned) offering the resource.
    pub node_mean: f64,
    pub node_std: f64,
    pub node_max: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GpuUse {
    pub devices: u64,
    pub allocated_milli: u64,
    pub pending_milli: u64,
    pub utilisation: f64,
    /// Devices with nothing allocated.
    pub whole_free: u64,
    /// FGD fragmentation (see [`frag`]) in milli, as a share of idle GPU milli, and as a
    /// percentage of the cluster's GPUs.
    pub fragmentation_milli: f64,
    pub fragmentation_ratio: f64,
    pub fragmentation_pct: f64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LowerBounds {
    /// Per-resource covering bound, max over resources (GPU devices included).
    pub l1: u64,
    /// max(L1, Martello–Toth L2 per resource, GPU device L2).
    pub strong: u64,
    /// Some pods could not fit even on an empty node / the whole cluster lacks capacity.
    pub infeasible: bool,
}

#[derive(Clone, Debug)]
pub struct Evaluation {
    pub nodes: usize,
    /// Nodes running at least one active pod that is not a DaemonSet or static pod.
    pub nodes_used: usize,
    /// Per node: whether it counts in `nodes_used`.
    pub node_in_use: Vec<bool>,
    pub pods: usize,
    pub pods_active: usize,
    pub pods_bound: usize,
    pub pods_pending: usize,
    pub resources: Vec<ResourceUse>,
    pub gpu: GpuUse,
    /// Per node: effective requests of the active pods on it (columns: resource ids).
    pub node_requested: ResourceMatrix,
    /// Per node: allocated GPU milli.
    pub node_gpu_milli: Vec<u64>,
    pub violations: Vec<Violation>,
    pub lower_bounds: LowerBounds,
}

/// Per-node requested amounts and per-device use under `a`.
fn usage(s: &Snapshot, a: &Assignment) -> (ResourceMatrix, Vec<Vec<u32>>) {
    let width = s.resources.len();
    let mut requested = ResourceMatrix::zeros(width, s.nodes.len());
    let mut devices: Vec<Vec<u32>> = s
        .nodes
        .gpu_devices
        .iter()
        .map(|&d| vec![0; d as usize])
        .collect();
    for p in 0..s.pods.len() {
        let Some(n) = a.node[p] else { continue };
        if s.pods.phase[p].is_terminal() {
            continue;
        }
        let row = requested.row_mut(n as usize);
        for (acc, &r) in row.iter_mut().zip(s.pods.requests.row(p)) {
            *acc = acc.saturating_add(r);
        }
        let demand = s.pods.gpu[p];
        for d in gpu::mask_indices(a.gpu_devices[p]) {
            if let Some(slot) = devices[n as usize].get_mut(d as usize) {
                *slot += demand.milli;
            }
        }
    }
    (requested, devices)
}

fn mean_std_max(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt(), values.iter().copied().fold(0.0, f64::max))
}

/// Evaluates `a` (by default pass `&s.current`).
pub fn evaluate(s: &Snapshot, a: &Assignment) -> Evaluation {
    let (requested, device_used) = usage(s, a);
    let n_nodes = s.nodes.len();
    let schedulable: Vec<bool> = (0..n_nodes)
        .map(|n| s.nodes.ready[n] && !s.nodes.unschedulable[n])
        .collect();

    let mut pods_active = 0;
    let mut pods_bound = 0;
    let mut used = vec![false; n_nodes];
    let mut pending_req = vec![0i64; s.resources.len()];
    let mut pending_gpu = 0u64;
    for p in 0..s.pods.len() {
        if s.pods.phase[p].is_terminal() {
            continue;
        }
        pods_active += 1;
        match a.node[p] {
            Some(n) => {
                pods_bound += 1;
                if !s.is_daemon(p as PodId) && !s.pods.mirror[p] {
                    used[n as usize] = true;
                }
            }
            None => {
                for (acc, &r) in pending_req.iter_mut().zip(s.pods.requests.row(p)) {
                    *acc = acc.saturating_add(r);
                }
                pending_gpu += s.pods.gpu[p].total_milli();
            }
        }
    }

    let resources = (0..s.resources.len())
        .map(|r| {
            let req: i64 = (0..n_nodes).map(|n| requested.get(n, r)).sum();
            let alloc: i64 = (0..n_nodes).map(|n| s.nodes.allocatable.get(n, r)).sum();
            let per_node: Vec<f64> = (0..n_nodes)
                .filter(|&n| schedulable[n] && s.nodes.allocatable.get(n, r) > 0)
                .map(|n| requested.get(n, r) as f64 / s.nodes.allocatable.get(n, r) as f64)
                .collect();
            let (node_mean, node_std, node_max) = mean_std_max(&per_node);
            ResourceUse {
                name: s.resources.name(r).to_string(),
                requested: req,
                pending: pending_req[r],
                allocatable: alloc,
                utilisation: if alloc > 0 {
                    req as f64 / alloc as f64
                } else {
                    0.0
                },
                node_mean,
                node_std,
                node_max,
            }
        })
        .collect();

    let gpu = gpu_use(s, &requested, &device_used, pending_gpu);
    let node_gpu_milli = device_used
        .iter()
        .map(|d| d.iter().map(|&u| u64::from(u)).sum())
        .collect();
    let violations = violations::find(s, a, &requested, &device_used);
    Evaluation {
        nodes: n_nodes,
        nodes_used: used.iter().filter(|&&u| u).count(),
        node_in_use: used,
        pods: s.pods.len(),
        pods_active,
        pods_bound,
        pods_pending: pods_active - pods_bound,
        resources,
        gpu,
        node_requested: requested,
        node_gpu_milli,
        violations,
        lower_bounds: lower_bounds(s),
    }
}

/// What pods of one shape of the target workload share: requests, GPU demand, and the number of
/// their node constraints (see [`Snapshot::node_constraints`]).
type ShapeKey<'s> = (&'s [i64], GpuDemand, Option<u32>);

fn gpu_use(
    s: &Snapshot,
    requested: &ResourceMatrix,
    device_used: &[Vec<u32>],
    pending_milli: u64,
) -> GpuUse {
    let devices = s.total_gpu_devices();
    let allocated: u64 = device_used
        .iter()
        .flatten()
        .map(|&u| u64::from(u.min(DEVICE_MILLI)))
        .sum();
    let whole_free = device_used.iter().flatten().filter(|&&u| u == 0).count() as u64;

    // The target workload: active pods' shapes, weighted by how many pods have them. Pods with the
    // same requests and node constraints share a shape; one representative answers affinity.
    let mut shapes: IdMap<ShapeKey, (PodId, u64)> = IdMap::default();
    for p in 0..s.pods.len() {
        if s.pods.phase[p].is_terminal() {
            continue;
        }
        let constraints = s.node_constraints(p as PodId);
        let key = (s.pods.requests.row(p), s.pods.gpu[p], constraints);
        shapes.entry(key).or_insert((p as PodId, 0)).1 += 1;
    }
    let total: u64 = shapes.values().map(|&(_, c)| c).sum();
    let mut shapes: Vec<_> = shapes.into_iter().collect();
    shapes.sort_by_key(|((_, _, _), (rep, _))| *rep);
    let shape_list: Vec<frag::Shape> = shapes
        .iter()
        .map(|((req, gpu, _), (_, count))| frag::Shape {
            requests: req,
            gpu: *gpu,
            weight: *count as f64 / total.max(1) as f64,
        })
        .collect();

    let gpu_nodes: Vec<usize> = (0..s.nodes.len())
        .filter(|&n| s.nodes.gpu_devices[n] > 0)
        .collect();
    let free: Vec<(Vec<u32>, Vec<i64>)> = gpu_nodes
        .iter()
        .map(|&n| {
            let free_dev = device_used[n]
                .iter()
                .map(|&u| DEVICE_MILLI.saturating_sub(u))
                .collect();
            let free = s
                .nodes
                .allocatable
                .row(n)
                .iter()
                .zip(requested.row(n))
                .map(|(&a, &r)| a - r)
                .collect();
            (free_dev, free)
        })
        .collect();
    let nodes: Vec<frag::NodeFree> = free
        .iter()
        .map(|(gpu_free, free)| frag::NodeFree { gpu_free, free })
        .collect();
    let idle: u64 = free
        .iter()
        .flat_map(|(d, _)| d)
        .map(|&f| u64::from(f))
        .sum();
    // Per set of node constraints that GPU shapes have, which GPU nodes it admits: the shapes of a
    // workload's pods share them, and most shapes ask for no GPU and never ask.
    let mut admits: IdMap<u32, Vec<bool>> = IdMap::default();
    let fragments = frag::nodes_fragment(&nodes, &shape_list, |i, k| {
        let ((_, _, constraints), (rep, _)) = shapes[i];
        let Some(constraints) = constraints else {
            return true;
        };
        admits.entry(constraints).or_insert_with(|| {
            gpu_nodes
                .iter()
                .map(|&n| s.node_affinity_admits(rep, n as NodeId))
                .collect()
        })[k]
    });
    let mut frag_milli = 0.0;
    for f in fragments {
        frag_milli += f;
    }
    GpuUse {
        devices,
        allocated_milli: allocated,
        pending_milli,
        utilisation: if devices > 0 {
            allocated as f64 / (devices * 1000) as f64
        } else {
            0.0
        },
        whole_free,
        fragmentation_milli: frag_milli,
        fragmentation_ratio: if idle > 0 {
            frag_milli / idle as f64
        } else {
            0.0
        },
        fragmentation_pct: if devices > 0 {
            100.0 * frag_milli / 1000.0 / devices as f64
        } else {
            0.0
        },
    }
}

/// Lower bounds on the nodes needed by every active pod except DaemonSet and static pods (those
/// come with their nodes; leaving them out keeps the bound valid).
pub fn lower_bounds(s: &Snapshot) -> LowerBounds {
    let pods: Vec<usize> = (0..s.pods.len())
        .filter(|&p| {
            !s.pods.phase[p].is_terminal() && !s.is_daemon(p as PodId) && !s.pods.mirror[p]
        })
        .collect();
    let n_nodes = s.nodes.len();
    let mut l1 = 0u64;
    let mut strong = 0u64;
    let mut infeasible = false;
    for r in 0..s.resources.len() {
        let sizes: Vec<i64> = pods
            .iter()
            .map(|&p| s.pods.requests.get(p, r))
            .filter(|&v| v > 0)
            .collect();
        if sizes.is_empty() {
            continue;
        }
        let mut caps: Vec<i64> = (0..n_nodes)
            .map(|n| s.nodes.allocatable.get(n, r))
            .collect();
        let demand: i128 = sizes.iter().map(|&v| i128::from(v)).sum();
        let k = bounds::fewest_covering(&mut caps, demand).unwrap_or_else(|| {
            infeasible = true;
            n_nodes
        }) as u64;
        l1 = l1.max(k);
        let largest = caps.first().copied().unwrap_or(0);
        if sizes.iter().any(|&v| v > largest) {
            infeasible = true;
        }
        strong = strong.max(bounds::martello_toth_l2(&sizes, largest));
    }
    // GPUs: devices are homogeneous bins of 1000 milli.
    let mut items = Vec::new();
    for &p in &pods {
        let d = s.pods.gpu[p];
        items.extend(std::iter::repeat_n(i64::from(d.milli), d.count as usize));
    }
    if !items.is_empty() {
        let mut dev_caps: Vec<i64> = s.nodes.gpu_devices.iter().map(|&d| i64::from(d)).collect();
        let by_milli = (items.iter().map(|&m| i128::from(m)).sum::<i128>() + 999) / 1000;
        let covering = |caps: &mut Vec<i64>, need: i128, infeasible: &mut bool| {
            bounds::fewest_covering(caps, need).unwrap_or_else(|| {
                *infeasible = true;
                n_nodes
            }) as u64
        };
        l1 = l1.max(covering(&mut dev_caps, by_milli, &mut infeasible));
        let devices_needed = bounds::martello_toth_l2(&items, i64::from(DEVICE_MILLI));
        strong = strong.max(covering(
            &mut dev_caps,
            i128::from(devices_needed),
            &mut infeasible,
        ));
    }
    LowerBounds {
        l1,
        strong: strong.max(l1),
        infeasible,
    }
}
