//! FGD, fragmentation gradient descent (Weng et al., USENIX ATC '23): place the pod where it
//! increases the node's GPU fragmentation least. A node's fragmentation is measured against the
//! *target workload* — the pod shapes expected to arrive, with their frequencies — exactly as
//! [`crate::metrics::frag`] defines it; the score is the simulator's (`fgd_score.go`):
//! ⌊sigmoid((F_before − F_after) / 1000) · 100⌋, not normalised.
//!
//! * A GPU share is tried on every device it fits and goes to the one with the best score (the
//!   lowest index among equals); whole devices are the lowest-indexed free ones; a CPU-only pod
//!   changes fragmentation through the CPU it takes.
//! * The target workload is the snapshot's active pods (bound and pending) reduced as the
//!   simulator's `GetTypicalPods` does: shapes — (CPU with the non-zero default, GPU demand, node
//!   constraints) — by decreasing count, the most popular ones until they cover
//!   `popularityThreshold` % (default 95) of the pods, re-weighted to sum to 1. CPU-only pods are
//!   part of it unless `includeCpuPods: false`.
//! * As in the simulator, fragmentation here looks at CPU and GPU only (memory is not part of a
//!   shape), and "CPU left" is allocatable minus the effective requests on the node.
//!
//! Speed: a node's fragmentation depends only on its accessibility class (which shapes its labels
//! admit), which shapes' CPU fits in its CPU left, and the multiset of its devices' free milli —
//! a small space, so values are memoised per snapshot.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use serde::Deserialize;

use super::{cpu_left, is_share, pod_cpu};
use crate::error::ConfigError;
use crate::metrics::frag::{self, NodeFree, Shape};
use crate::model::gpu::{self, DeviceMask, GpuDemand};
use crate::schedule::framework::{Cycle, CycleData, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::{NodeId, PodId, Snapshot};

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FgdArgs {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    /// Percentage of pods the typical shapes must cover (the simulator's default for the paper:
    /// 95).
    #[serde(default)]
    pub popularity_threshold: Option<f64>,
    /// Whether CPU-only pods are part of the target workload (default true).
    #[serde(default)]
    pub include_cpu_pods: Option<bool>,
}

pub struct Fgd {
    threshold: f64,
    cpu_pods: bool,
    cache: Mutex<Option<Cache>>,
}

impl Fgd {
    pub fn new(args: FgdArgs) -> Result<Self, ConfigError> {
        let threshold = args.popularity_threshold.unwrap_or(95.0);
        if !(threshold > 0.0 && threshold <= 100.0) {
            return Err(ConfigError::new(format!(
                "popularityThreshold must be in (0, 100], got {threshold}"
            )));
        }
        Ok(Fgd {
            threshold,
            cpu_pods: args.include_cpu_pods.unwrap_or(true),
            cache: Mutex::new(None),
        })
    }

    /// The cache for `snap`, rebuilt when the plugin meets another snapshot.
    fn with_cache<R>(&self, snap: &Snapshot, f: impl FnOnce(&mut Cache) -> R) -> R {
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let key = fingerprint(snap);
        if guard.as_ref().is_none_or(|c| c.fingerprint != key) {
            let active = (0..snap.pods.len() as PodId).filter(|&p| snap.is_active(p));
            let typical = typical_pods(snap, active, self.threshold, self.cpu_pods);
            *guard = Some(Cache {
                fingerprint: key,
                workload: Workload::new(snap, typical),
                frag: Memo::default(),
                scores: Memo::default(),
            });
        }
        f(guard.as_mut().expect("just filled"))
    }
}

/// Identifies a snapshot well enough to notice the plugin is used with another one.
fn fingerprint(snap: &Snapshot) -> (usize, usize, usize, Option<String>) {
    (
        snap as *const Snapshot as usize,
        snap.pods.len(),
        snap.nodes.len(),
        snap.pods.uid.last().cloned(),
    )
}

/// One shape of the target workload.
#[derive(Clone, Debug, PartialEq)]
pub struct TypicalPod {
    /// A pod with this shape (its node constraints say which nodes the shape may use).
    pub example: PodId,
    pub cpu: i64,
    pub gpu: GpuDemand,
    pub weight: f64,
}

/// The simulator's `GetTypicalPods` over `pods` (each counted once per occurrence): shapes by
/// decreasing count (ties: larger CPU, then larger GPU share, more devices, constraints), the
/// most popular until they cover `threshold` % of the pods, weights re-normalised to sum to 1.
pub fn typical_pods(
    snap: &Snapshot,
    pods: impl IntoIterator<Item = PodId>,
    threshold: f64,
    include_cpu_pods: bool,
) -> Vec<TypicalPod> {
    let mut by_shape: HashMap<(i64, u32, u32, String), (PodId, u64)> = HashMap::new();
    let mut total = 0u64;
    for p in pods {
        let pi = p as usize;
        let gpu = snap.pods.gpu[pi];
        if gpu.is_none() && !include_cpu_pods {
            continue;
        }
        let constraint = if snap.pods.node_selector[pi].is_empty()
            && snap.pods.affinity[pi]
                .as_ref()
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|n| n.required.as_ref())
                .is_none()
        {
            String::new()
        } else {
            format!(
                "{:?}{:?}",
                snap.pods.node_selector[pi],
                snap.pods.affinity[pi]
                    .as_ref()
                    .and_then(|a| a.node_affinity.as_ref())
                    .and_then(|n| n.required.as_ref())
            )
        };
        let key = (snap.pods.nonzero[pi][0], gpu.milli, gpu.count, constraint);
        by_shape.entry(key).or_insert((p, 0)).1 += 1;
        total += 1;
    }
    let mut shapes: Vec<_> = by_shape.into_iter().collect();
    shapes.sort_by(|(ka, (_, ca)), (kb, (_, cb))| cb.cmp(ca).then_with(|| kb.cmp(ka)));
    let total = total as f64;
    let expected = threshold * total / 100.0;
    let mut taken = 0;
    let mut covered = 0.0;
    while covered < expected && taken < shapes.len() {
        covered += shapes[taken].1 .1 as f64;
        taken += 1;
    }
    let chopped = taken < shapes.len();
    shapes
        .into_iter()
        .take(taken)
        .map(|((cpu, milli, count, _), (example, n))| {
            let mut weight = n as f64 / total;
            if chopped {
                weight /= covered / total;
            }
            TypicalPod {
                example,
                cpu,
                gpu: GpuDemand { count, milli },
                weight,
            }
        })
        .collect()
}

/// The target workload resolved against one snapshot's nodes.
struct Workload {
    shapes: Vec<TypicalPod>,
    /// Per node: its accessibility class.
    node_class: Vec<u32>,
    /// Per class, per shape: whether the shape's node constraints admit such a node.
    access: Vec<Vec<bool>>,
    /// The shapes' distinct CPU requests, ascending: what a node's CPU left is compared with.
    cpu_steps: Vec<i64>,
}

impl Workload {
    fn new(snap: &Snapshot, shapes: Vec<TypicalPod>) -> Self {
        let constrained: Vec<usize> = (0..shapes.len())
            .filter(|&i| {
                let p = shapes[i].example as usize;
                !snap.pods.node_selector[p].is_empty()
                    || snap.pods.affinity[p]
                        .as_ref()
                        .and_then(|a| a.node_affinity.as_ref())
                        .is_some_and(|n| n.required.is_some())
            })
            .collect();
        let mut classes: HashMap<Vec<bool>, u32> = HashMap::new();
        let mut access = Vec::new();
        let node_class = (0..snap.nodes.len() as NodeId)
            .map(|n| {
                let mut row = vec![true; shapes.len()];
                for &i in &constrained {
                    row[i] = snap.node_affinity_admits(shapes[i].example, n);
                }
                *classes.entry(row.clone()).or_insert_with(|| {
                    access.push(row);
                    access.len() as u32 - 1
                })
            })
            .collect();
        let mut cpu_steps: Vec<i64> = shapes.iter().map(|s| s.cpu).collect();
        cpu_steps.sort_unstable();
        cpu_steps.dedup();
        Workload {
            shapes,
            node_class,
            access,
            cpu_steps,
        }
    }
}

/// Fragmentation by node state (see [`state_key`]), and a pod shape's score by node state (the
/// key also holds the CPU bucket after the pod) with, for a share, the free milli of the devices
/// that reach it.
type Memo<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// A fast hasher for the memos' already well-spread integer keys.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(32) ^ u64::from(i)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = (self.0 ^ (i as u64) ^ ((i >> 64) as u64).rotate_left(29))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct Cache {
    fingerprint: (usize, usize, usize, Option<String>),
    workload: Workload,
    frag: Memo<u128, f64>,
    scores: Memo<(u128, u32), (i64, Best)>,
}

/// The free milli values (up to 8, as memoised states have at most 8 devices) whose devices
/// reach the best score for a share: the simulator takes the first such device in index order,
/// which depends on the node, not on the memoised state.
#[derive(Clone, Copy, Debug, Default)]
struct Best {
    values: [u16; 8],
    len: u8,
}

impl Best {
    fn add(&mut self, free: u32) {
        if (self.len as usize) < self.values.len() {
            self.values[self.len as usize] = free as u16;
            self.len += 1;
        }
    }
    fn has(&self, free: u32) -> bool {
        self.values[..self.len as usize].contains(&(free as u16))
    }
}

/// A node state packed into 128 bits: class, up to two CPU buckets (before and after the pod),
/// and up to 8 devices' free milli in decreasing order (10 bits each). `None` when it does not
/// fit (then nothing is memoised).
fn state_key(class: u32, buckets: [usize; 2], free: &[u32]) -> Option<u128> {
    if free.len() > 8 || class >= 1 << 12 || buckets.iter().any(|&b| b >= 1 << 14) {
        return None;
    }
    let mut sorted = [0u32; 8];
    sorted[..free.len()].copy_from_slice(free);
    sorted[..free.len()].sort_unstable_by(|a, b| b.cmp(a));
    let mut key = u128::from(class) << 14 | buckets[0] as u128;
    key = (key << 14 | buckets[1] as u128) << 4 | free.len() as u128;
    for &f in &sorted {
        if f >= 1 << 10 {
            return None;
        }
        key = key << 10 | u128::from(f);
    }
    Some(key)
}

impl Cache {
    /// F_n of a node in class `class` with `cpu` left and `free` milli per device.
    fn fragment(&mut self, shapes: &[Shape], class: u32, cpu: i64, free: &[u32]) -> f64 {
        let w = &self.workload;
        let bucket = w.cpu_steps.partition_point(|&t| t <= cpu);
        let access = &w.access[class as usize];
        let compute = || {
            let cpu_free = [cpu];
            let node = NodeFree {
                gpu_free: free,
                free: &cpu_free,
            };
            frag::node_fragment(&node, shapes, |i| access[i])
        };
        match state_key(class, [bucket, 0], free) {
            Some(key) => *self.frag.entry(key).or_insert_with(compute),
            None => compute(),
        }
    }

    /// The pod's score on `node` and the devices it would take there.
    fn node_score(&mut self, shapes: &[Shape], cx: &Cycle, node: NodeId) -> (i64, DeviceMask) {
        let class = self.workload.node_class[node as usize];
        let cpu = cpu_left(cx, node);
        let after_cpu = cpu - pod_cpu(cx);
        let free = &cx.state.gpu_free[node as usize];
        let steps = &self.workload.cpu_steps;
        let buckets = [
            steps.partition_point(|&t| t <= cpu),
            steps.partition_point(|&t| t <= after_cpu),
        ];
        let pod = cx.gpu.count << 16 | cx.gpu.milli;
        let key = state_key(class, buckets, free).map(|k| (k, pod));
        let (score, best) = match key.and_then(|k| self.scores.get(&k)) {
            Some(&hit) => hit,
            None => {
                let computed = self.compute_score(shapes, class, cpu, after_cpu, free, cx);
                if let Some(k) = key {
                    self.scores.insert(k, computed);
                }
                computed
            }
        };
        if is_share(cx) {
            // The first device (in index order) among those that score best.
            let i = free.iter().position(|&f| best.has(f));
            (score, i.map_or(0, |i| 1 << i))
        } else {
            (score, gpu::best_fit(free, cx.gpu).unwrap_or(0))
        }
    }

    /// The score, and for a share the free milli values of the devices that reach it.
    fn compute_score(
        &mut self,
        shapes: &[Shape],
        class: u32,
        cpu: i64,
        after_cpu: i64,
        free: &[u32],
        cx: &Cycle,
    ) -> (i64, Best) {
        let before = self.fragment(shapes, class, cpu, free);
        let mut buf = [0u32; gpu::MAX_DEVICES as usize];
        let after_free = &mut buf[..free.len()];
        after_free.copy_from_slice(free);
        if is_share(cx) {
            // Devices with equal free milli score alike, so each value is tried once.
            let mut best = (i64::MIN, Best::default());
            for i in 0..free.len() {
                if free[i] < cx.gpu.milli || free[..i].contains(&free[i]) {
                    continue;
                }
                after_free[i] -= cx.gpu.milli;
                let after = self.fragment(shapes, class, after_cpu, after_free);
                after_free[i] = free[i];
                let s = fgd_score(before, after);
                if s > best.0 {
                    best = (s, Best::default());
                }
                if s == best.0 {
                    best.1.add(free[i]);
                }
            }
            return if best.0 == i64::MIN {
                (0, Best::default())
            } else {
                best
            };
        }
        let Some(mask) = gpu::best_fit(free, cx.gpu) else {
            return (0, Best::default());
        };
        gpu::take(after_free, mask, cx.gpu);
        let after = self.fragment(shapes, class, after_cpu, after_free);
        (fgd_score(before, after), Best::default())
    }
}

/// ⌊sigmoid((before − after) / 1000) · 100⌋: 50 when fragmentation does not change, more when it
/// falls. Fragmentation is in GPU milli, so the slope is per GPU.
pub fn fgd_score(before: f64, after: f64) -> i64 {
    let x = (before - after) / 1000.0;
    (1.0 / (1.0 + (-x).exp()) * MAX_NODE_SCORE as f64) as i64
}

fn frag_shapes(w: &Workload) -> Vec<([i64; 1], GpuDemand, f64)> {
    w.shapes
        .iter()
        .map(|s| ([s.cpu], s.gpu, s.weight))
        .collect()
}

fn as_shapes(list: &[([i64; 1], GpuDemand, f64)]) -> Vec<Shape<'_>> {
    list.iter()
        .map(|(cpu, gpu, weight)| Shape {
            requests: cpu,
            gpu: *gpu,
            weight: *weight,
        })
        .collect()
}

impl ScorePlugin for Fgd {
    fn name(&self) -> &'static str {
        "FGD"
    }

    fn score(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> i64 {
        let mut out = [0];
        self.score_all(cx, &None, &[node], &mut out);
        out[0]
    }

    fn score_all(&self, cx: &Cycle, _: &CycleData, nodes: &[NodeId], out: &mut [i64]) {
        self.with_cache(cx.snap, |cache| {
            let list = frag_shapes(&cache.workload);
            let shapes = as_shapes(&list);
            for (o, &n) in out.iter_mut().zip(nodes) {
                *o = cache.node_score(&shapes, cx, n).0;
            }
        });
    }

    fn choose_devices(&self, cx: &Cycle, node: NodeId) -> Option<DeviceMask> {
        if cx.gpu.is_none() {
            return Some(0);
        }
        self.with_cache(cx.snap, |cache| {
            let list = frag_shapes(&cache.workload);
            let shapes = as_shapes(&list);
            let (_, mask) = cache.node_score(&shapes, cx, node);
            (mask != 0).then_some(mask)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{cluster, node, pending, with_cycle};
    use super::*;

    #[test]
    fn typical_pods_like_the_simulator() {
        // 6 share-500 pods, 3 one-GPU pods, 1 CPU pod (all 1 core): with 95 % the first two
        // shapes cover 9/10 < 9.5, so all three are typical; with 85 % only two, re-weighted.
        let mut pending_pods = vec![(1000, GpuDemand::share(500)); 6];
        pending_pods.extend([(1000, GpuDemand::whole(1)); 3]);
        pending_pods.push((1000, GpuDemand::NONE));
        let snap = cluster(&[node(8000, 2)], &[], &pending_pods);
        let all = || 0..snap.pods.len() as PodId;
        let t = typical_pods(&snap, all(), 95.0, true);
        let w: Vec<(GpuDemand, f64)> = t.iter().map(|s| (s.gpu, s.weight)).collect();
        assert_eq!(
            w,
            [
                (GpuDemand::share(500), 0.6),
                (GpuDemand::whole(1), 0.3),
                (GpuDemand::NONE, 0.1)
            ]
        );
        let t = typical_pods(&snap, all(), 85.0, true);
        assert_eq!(t.len(), 2);
        assert!((t[0].weight - 6.0 / 9.0).abs() < 1e-12);
        assert!((t[1].weight - 3.0 / 9.0).abs() < 1e-12);
        assert_eq!(typical_pods(&snap, all(), 95.0, false).len(), 2);
    }

    #[test]
    fn score_by_hand() {
        assert_eq!(fgd_score(1000.0, 1000.0), 50);
        // Fragmentation falls by one GPU: sigmoid(1) = 0.731.
        assert_eq!(fgd_score(2000.0, 1000.0), 73);
        assert_eq!(fgd_score(1000.0, 1500.0), 37);
    }

    #[test]
    fn share_goes_where_it_fragments_least() {
        // Target workload: the pending pods, three 600-milli shares and one 2-GPU pod (1 core
        // each). n0 has device 0 at 500 free (another pod holds 500), device 1 whole; n1 two
        // whole devices.
        let snap = cluster(
            &[node(32_000, 2), node(32_000, 2)],
            &[(1000, GpuDemand::share(500), 0, "0")],
            &[
                (1000, GpuDemand::share(600)),
                (1000, GpuDemand::share(600)),
                (1000, GpuDemand::share(600)),
                (1000, GpuDemand::whole(2)),
            ],
        );
        let fgd = Fgd::new(FgdArgs::default()).unwrap();
        with_cycle(&snap, pending(&snap, 0), |cx| {
            // Workload over the 5 active pods: share-600 ×3 (0.6), share-500 (0.2), 2 GPUs (0.2).
            // n0 before: share-600 can't use device 0 → 500 × 0.6; 500 fits all; 2 GPUs can't run
            // → 1500 × 0.2. F = 300 + 0 + 300 = 600. The 600 share fits only device 1 → free
            // (500, 400): F = 900·0.6 + 400·0.2 + 900·0.2 = 800 → sigmoid(−0.2) → 45.
            // n1 before: only 2-GPU shape fits, F = 0; after (400, 1000): 400·.6 + 400·.2 + 1400·.2
            // = 600 → sigmoid(−0.6) → 35.
            let mut s = [0; 2];
            fgd.score_all(cx, &None, &[0, 1], &mut s);
            assert_eq!(s, [45, 35]);
            assert_eq!(fgd.score(cx, &None, 1), 35);
            assert_eq!(fgd.choose_devices(cx, 0), Some(0b10));
            assert_eq!(fgd.choose_devices(cx, 1), Some(0b01));
        });
        // A 2-GPU pod: only n1 can take it; afterwards nothing is left there, F 0 → 0 → 50.
        with_cycle(&snap, pending(&snap, 3), |cx| {
            assert_eq!(fgd.score(cx, &None, 1), 50);
            assert_eq!(fgd.choose_devices(cx, 1), Some(0b11));
        });
    }

    #[test]
    fn equal_scores_take_the_first_device_even_from_the_memo() {
        // Target workload: whole GPUs only (the shares are under 5 % of the pods).
        // n0 devices free (600, 800), n1 (800, 600): the same state for the memo. A 300 share
        // leaves 1100 idle, all fragment, on either device: equal scores, so device 0 on both.
        let mut pods = vec![(1000, GpuDemand::share(300))];
        pods.extend([(1000, GpuDemand::whole(1)); 100]);
        let snap = cluster(
            &[node(32_000, 2), node(32_000, 2)],
            &[
                (100, GpuDemand::share(400), 0, "0"),
                (100, GpuDemand::share(200), 0, "1"),
                (100, GpuDemand::share(200), 1, "0"),
                (100, GpuDemand::share(400), 1, "1"),
            ],
            &pods,
        );
        let fgd = Fgd::new(FgdArgs::default()).unwrap();
        with_cycle(&snap, pending(&snap, 0), |cx| {
            let mut s = [0; 2];
            fgd.score_all(cx, &None, &[0, 1], &mut s);
            assert_eq!(s, [fgd_score(1400.0, 1100.0); 2]);
            assert_eq!(fgd.choose_devices(cx, 0), Some(0b01));
            assert_eq!(fgd.choose_devices(cx, 1), Some(0b01));
        });
    }

    #[test]
    fn memo_keys_ignore_device_order() {
        let k = |c, b, free: &[u32]| state_key(c, b, free);
        assert_eq!(k(1, [2, 1], &[300, 1000]), k(1, [2, 1], &[1000, 300]));
        assert_ne!(k(1, [2, 1], &[300, 1000]), k(1, [3, 1], &[300, 1000]));
        assert_ne!(k(1, [2, 1], &[300, 1000]), k(1, [2, 0], &[300, 1000]));
        assert_ne!(k(2, [2, 1], &[300, 1000]), k(1, [2, 1], &[300, 1000]));
        assert_ne!(k(1, [2, 1], &[1000]), k(1, [2, 1], &[1000, 0]));
        assert_eq!(k(0, [0, 0], &[1000; 9]), None);
    }
}
