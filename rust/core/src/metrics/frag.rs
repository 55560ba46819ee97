//! GPU fragmentation as defined by the FGD paper (Weng et al., "Beware of Fragmentation:
//! Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC '23).
//!
//! Fragmentation is measured against a *target workload*: the distribution of pod shapes expected
//! to arrive (here, by default, the snapshot's own active pods, each shape weighted by its count).
//! For a node n and a pod shape m, the idle GPU milli of n that m could not use are fragments:
//! * m asks for no GPU — every idle GPU milli of n (a CPU-only task cannot use them);
//! * m cannot run on n at all (node affinity / GPU model, not enough CPU, memory or suitable
//!   devices) — every idle GPU milli of n;
//! * otherwise — the idle milli of the devices whose free share is smaller than m's per-device
//!   request.
//!
//! F_n = Σ_m p_m · frag(n, m); the cluster's fragmentation is Σ_n F_n, reported in milli, as a
//! ratio of all idle GPU milli, and as a percentage of the cluster's GPUs. This follows the
//! authors' simulator (`NodeGpuShareFragAmount`), except that "enough CPU" also checks memory and
//! every other requested resource, which the simulator omits.

use crate::model::gpu::GpuDemand;

/// One node's state as fragmentation sees it.
pub struct NodeFree<'a> {
    /// Free milli per device.
    pub gpu_free: &'a [u32],
    /// Free amount per resource (allocatable − requested).
    pub free: &'a [i64],
}

/// A pod shape of the target workload.
pub struct Shape<'a> {
    pub requests: &'a [i64],
    pub gpu: GpuDemand,
    /// Fraction of the workload, Σ = 1.
    pub weight: f64,
}

impl NodeFree<'_> {
    /// Idle GPU milli.
    fn idle(&self) -> u64 {
        self.gpu_free.iter().map(|&f| u64::from(f)).sum()
    }
}

/// GPU milli of `node` that `shape` cannot use; `accessible` says whether the shape's node affinity
/// (GPU models) admits the node.
pub fn node_shape_fragment(node: &NodeFree, shape: &Shape, accessible: bool) -> u64 {
    shape_fragment(node, node.idle(), shape, || accessible)
}

/// [`node_shape_fragment`] given the node's `idle` milli; `accessible` is asked only when the
/// answer depends on it.
fn shape_fragment(
    node: &NodeFree,
    idle: u64,
    shape: &Shape,
    accessible: impl FnOnce() -> bool,
) -> u64 {
    if idle == 0 || shape.gpu.is_none() || !accessible() {
        return idle;
    }
    let other_fits = shape.requests.iter().zip(node.free).all(|(&r, &f)| r <= f);
    let usable = node
        .gpu_free
        .iter()
        .filter(|&&f| f >= shape.gpu.milli)
        .count();
    if !other_fits || usable < shape.gpu.count as usize {
        return idle;
    }
    node.gpu_free
        .iter()
        .filter(|&&f| f < shape.gpu.milli)
        .map(|&f| u64::from(f))
        .sum()
}

/// F_n: the expected fragment of `node` over the workload. `accessible(i)` (whether shape `i`'s
/// node affinity admits the node) is asked only for shapes that ask for GPUs, and only if the
/// node has idle GPU milli.
pub fn node_fragment(
    node: &NodeFree,
    shapes: &[Shape],
    mut accessible: impl FnMut(usize) -> bool,
) -> f64 {
    let idle = node.idle();
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| s.weight * shape_fragment(node, idle, s, || accessible(i)) as f64)
        .sum()
}

/// F_n of each of `nodes`, each summed shape by shape as [`node_fragment`] sums it (so to the
/// same bits); `accessible(i, k)` is asked as there, of shape `i` and `nodes[k]`. A few nodes'
/// sums advance together: their additions are independent, and overlap.
pub fn nodes_fragment(
    nodes: &[NodeFree],
    shapes: &[Shape],
    mut accessible: impl FnMut(usize, usize) -> bool,
) -> Vec<f64> {
    const LANES: usize = 4;
    let mut out = Vec::with_capacity(nodes.len());
    for (c, chunk) in nodes.chunks(LANES).enumerate() {
        let mut idle = [0; LANES];
        for (k, node) in chunk.iter().enumerate() {
            idle[k] = node.idle();
        }
        let mut sum = [0.0; LANES];
        for (i, s) in shapes.iter().enumerate() {
            for (k, node) in chunk.iter().enumerate() {
                let f = shape_fragment(node, idle[k], s, || accessible(i, c * LANES + k));
                sum[k] += s.weight * f as f64;
            }
        }
        out.extend_from_slice(&sum[..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_cases() {
        // 4 devices: 1000, 300, 0, 600 free; plenty of CPU.
        let gpu_free = [1000, 300, 0, 600];
        let node = NodeFree {
            gpu_free: &gpu_free,
            free: &[8000, 1 << 34],
        };
        let share = |m| Shape {
            requests: &[1000, 1 << 30],
            gpu: GpuDemand::share(m),
            weight: 1.0,
        };
        // A 500-milli share can use devices 0 and 3; device 1's 300 is a fragment.
        assert_eq!(node_shape_fragment(&node, &share(500), true), 300);
        // A 200-milli share can use all idle devices.
        assert_eq!(node_shape_fragment(&node, &share(200), true), 0);
        // Not accessible (GPU model): all 1900 idle milli.
        assert_eq!(node_shape_fragment(&node, &share(200), false), 1900);
        // Two whole GPUs: only device 0 is whole -> cannot run -> all idle.
        let two = Shape {
            requests: &[0, 0],
            gpu: GpuDemand::whole(2),
            weight: 1.0,
        };
        assert_eq!(node_shape_fragment(&node, &two, true), 1900);
        // A CPU-only pod cannot use any GPU.
        let cpu = Shape {
            requests: &[100, 0],
            gpu: GpuDemand::NONE,
            weight: 1.0,
        };
        assert_eq!(node_shape_fragment(&node, &cpu, true), 1900);
        // Not enough CPU for the share pod.
        let big = Shape {
            requests: &[9000, 0],
            gpu: GpuDemand::share(100),
            weight: 1.0,
        };
        assert_eq!(node_shape_fragment(&node, &big, true), 1900);
        // Weighted mixture.
        let shapes = [share(500), share(200)];
        let shapes: Vec<Shape> = shapes
            .into_iter()
            .map(|s| Shape { weight: 0.5, ..s })
            .collect();
        assert_eq!(node_fragment(&node, &shapes, |_| true), 150.0);
        // Several nodes at once: each node's sum as on its own, to the bit.
        let idle = [0, 0, 0, 0];
        let frees = [
            [8000, 1 << 34],
            [100, 1 << 34],
            [0, 0],
            [8000, 1 << 34],
            [8000, 0],
        ];
        let nodes: Vec<NodeFree> = frees
            .iter()
            .enumerate()
            .map(|(k, free)| NodeFree {
                gpu_free: if k == 2 { &idle } else { &gpu_free },
                free,
            })
            .collect();
        let weights = [0.1, 0.7, 0.2];
        let mixed: Vec<Shape> = [share(500), cpu, big]
            .into_iter()
            .zip(weights)
            .map(|(s, weight)| Shape { weight, ..s })
            .collect();
        let access = |i: usize, k: usize| (i + k) % 3 != 0;
        let each: Vec<f64> = (0..nodes.len())
            .map(|k| node_fragment(&nodes[k], &mixed, |i| access(i, k)))
            .collect();
        assert_eq!(nodes_fragment(&nodes, &mixed, access), each);
    }
}
