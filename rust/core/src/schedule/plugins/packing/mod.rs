//! Packing policies for GPU clusters, as Score plugins usable in any profile: the six policies the
//! FGD paper compares (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
//! Fragmentation Gradient Descent", USENIX ATC '23) plus first fit. Each also picks the GPU devices
//! of the node it is chosen for ([`ScorePlugin::choose_devices`]), because with GPU sharing *which*
//! device a share lands on matters as much as which node.
//!
//! Scores follow the authors' simulator (`hkust-adsl/kubernetes-scheduler-simulator`,
//! `pkg/simulator/plugin/*_score.go`) to the integer: a score is truncated to an integer there, and
//! since equal totals are broken at random (selectHost), the truncation decides which nodes tie.
//! What the simulator calls a node's resources is, here:
//! * CPU left: allocatable − the effective CPU requests of the pods on it;
//! * GPU left: the free milli of each device (1000 per whole device);
//! * the pod's CPU: its CPU request with kube-scheduler's non-zero default (`GetNonzeroRequests`);
//!   its GPU: `count` devices of `milli` each.
//!
//! Memory is not part of any score (the simulator ignores it too); the NodeResourcesFit filter
//! still checks it. GPU models come from the pod's node affinity on `nvidia.com/gpu.product`, which
//! the NodeAffinity filter enforces before any of these score.

pub mod best_fit;
pub mod dot_product;
pub mod fgd;
pub mod first_fit;
pub mod gpu_clustering;
pub mod gpu_packing;
pub mod random;

use serde_json::Value;

use super::{args, invalid_args, no_args, Built};
use crate::error::ConfigError;
use crate::model::gpu::{self, DeviceMask, DEVICE_MILLI};
use crate::resources::CPU;
use crate::schedule::framework::{Cycle, Rng, ScorePlugin, MAX_NODE_SCORE};
use crate::snapshot::NodeId;

/// The largest node of the Alibaba trace: 128 cores and 8 GPUs. The simulator's BestFit and
/// DotProduct scale by it, so a score means the same on every node.
pub const MAX_SPEC_CPU: f64 = 128_000.0;
pub const MAX_SPEC_GPU: f64 = 8_000.0;

/// Policy names, as they are written in a profile.
pub const POLICIES: &[&str] = &[
    "BestFit",
    "DotProduct",
    "FGD",
    "FirstFit",
    "GpuClustering",
    "GpuPacking",
    "Random",
];

/// The packing plugin called `name`, or `None` when `name` is not one.
pub fn build(name: &str, a: Option<&Value>) -> Result<Option<Built>, ConfigError> {
    let plain = |plugin: Box<dyn ScorePlugin>| no_args(name, a).map(|_| plugin);
    let score: Box<dyn ScorePlugin> = match name {
        "BestFit" => plain(Box::new(best_fit::BestFit))?,
        "DotProduct" => plain(Box::new(dot_product::DotProduct))?,
        "FGD" => Box::new(fgd::Fgd::new(args(name, a)?).map_err(invalid_args(name))?),
        "FirstFit" => plain(Box::new(first_fit::FirstFit))?,
        "GpuClustering" => plain(Box::new(gpu_clustering::GpuClustering))?,
        "GpuPacking" => plain(Box::new(gpu_packing::GpuPacking))?,
        "Random" => Box::new(random::Random::new(args(name, a)?)),
        _ => return Ok(None),
    };
    Ok(Some(Built {
        filter: None,
        score: Some(score),
    }))
}

/// CPU left on `node` (the simulator's `MilliCpuLeft`).
pub(crate) fn cpu_left(cx: &Cycle, node: NodeId) -> i64 {
    cx.state.free(node, CPU)
}

/// The pod's CPU as the simulator counts it (non-zero default).
pub(crate) fn pod_cpu(cx: &Cycle) -> i64 {
    cx.snap.pods.nonzero[cx.p()][0]
}

/// Free GPU milli per device of `node`.
pub(crate) fn gpu_free<'a>(cx: &'a Cycle, node: NodeId) -> &'a [u32] {
    &cx.state.gpu_free[node as usize]
}

pub(crate) fn gpu_left_total(free: &[u32]) -> i64 {
    free.iter().map(|&f| i64::from(f)).sum()
}

/// Whether the pod takes a share of one device (as opposed to whole devices or none).
pub(crate) fn is_share(cx: &Cycle) -> bool {
    cx.gpu.count == 1 && cx.gpu.milli < DEVICE_MILLI
}

/// Devices for the pod on `free` when the policy does not care which: whole devices are the
/// lowest-indexed free ones (the simulator's `AllocateExclusiveGpuId`), a share goes to the
/// fullest device it fits (lowest index on ties) — both exactly [`gpu::best_fit`].
pub(crate) fn best_fit_devices(cx: &Cycle, node: NodeId) -> Option<DeviceMask> {
    gpu::best_fit(gpu_free(cx, node), cx.gpu)
}

/// The simulator's `NormalizeScore`: min–max scaling onto [0, MAX_NODE_SCORE] with integer
/// division; all equal → all 0. `i64::MIN` marks a node the policy cannot score and becomes 0.
pub fn min_max_normalize(scores: &mut [i64]) {
    let valid = scores.iter().copied().filter(|&s| s != i64::MIN);
    let (lo, hi) = valid.fold((i64::MAX, i64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
    let range = hi.saturating_sub(lo);
    for s in scores.iter_mut() {
        *s = if *s == i64::MIN || range <= 0 {
            0
        } else {
            (*s - lo) * MAX_NODE_SCORE / range
        };
    }
}

/// A generator for one decision of one cycle, reproducible from the plugin's seed, the pod and a
/// `salt` — so a plugin needs no mutable state and the same run always decides the same.
pub(crate) fn decision_rng(seed: u64, cx: &Cycle, salt: u64) -> Rng {
    let mut r = Rng::new(seed);
    let a = r.next_u64();
    Rng::new(a ^ (u64::from(cx.pod) << 20) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A tiny cluster to score by hand: nodes with given CPU and GPU devices, some devices partly
    //! used, and one pending pod to place.

    use crate::model::gpu::GpuDemand;
    use crate::schedule::framework::Cycle;
    use crate::schedule::state::ClusterState;
    use crate::snapshot::{parse_documents, PodId, Snapshot};
    use serde_json::{json, Value};

    pub struct NodeSpec {
        pub cpu_milli: i64,
        pub gpus: u32,
        pub model: &'static str,
    }

    pub fn node(cpu_milli: i64, gpus: u32) -> NodeSpec {
        NodeSpec {
            cpu_milli,
            gpus,
            model: "G2",
        }
    }

    /// A pod asking for `cpu` milli-CPU and `gpu` (whole devices or a share).
    pub fn pod_json(name: &str, cpu: i64, gpu: GpuDemand, node: Option<&str>) -> Value {
        let mut requests = json!({"cpu": format!("{cpu}m"), "memory": "1Gi"});
        if gpu.count > 1 || gpu.milli == 1000 {
            requests["nvidia.com/gpu"] = json!(gpu.count.to_string());
        } else if gpu.count == 1 {
            requests["kube-engine.io/gpu-milli"] = json!(gpu.milli.to_string());
        }
        let mut pod = json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "t"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": requests}}]},
            "status": {"phase": if node.is_some() { "Running" } else { "Pending" }},
        });
        if let Some(n) = node {
            pod["spec"]["nodeName"] = json!(n);
        }
        pod
    }

    /// Nodes `n0`, `n1`, …; `bound` pods (name, cpu, gpu, node index, devices) already placed;
    /// then `pending` pods, unbound.
    pub fn cluster(
        nodes: &[NodeSpec],
        bound: &[(i64, GpuDemand, usize, &str)],
        pending: &[(i64, GpuDemand)],
    ) -> Snapshot {
        let mut items: Vec<Value> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                json!({
                    "kind": "Node", "apiVersion": "v1",
                    "metadata": {"name": format!("n{i}"),
                                 "labels": {"nvidia.com/gpu.product": n.model}},
                    "status": {"allocatable": {"cpu": format!("{}m", n.cpu_milli),
                                               "memory": "64Gi", "pods": "110",
                                               "nvidia.com/gpu": n.gpus.to_string()},
                               "conditions": [{"type": "Ready", "status": "True"}]},
                })
            })
            .collect();
        for (i, &(cpu, gpu, node, devices)) in bound.iter().enumerate() {
            let mut p = pod_json(&format!("b{i}"), cpu, gpu, Some(&format!("n{node}")));
            if !devices.is_empty() {
                p["metadata"]["annotations"] = json!({"kube-engine.io/gpu-devices": devices});
            }
            items.push(p);
        }
        for (i, &(cpu, gpu)) in pending.iter().enumerate() {
            items.push(pod_json(&format!("p{i}"), cpu, gpu, None));
        }
        let doc = serde_json::to_vec(&json!({"kind": "List", "apiVersion": "v1", "items": items}))
            .unwrap();
        parse_documents(&[&doc]).unwrap()
    }

    /// Runs `f` with the cycle of pending pod `pod`.
    pub fn with_cycle<R>(snap: &Snapshot, pod: PodId, f: impl FnOnce(&Cycle) -> R) -> R {
        let state = ClusterState::new(snap, &snap.current);
        let cx = Cycle::new(&state, pod);
        f(&cx)
    }

    /// Pod id of the i-th pending pod.
    pub fn pending(snap: &Snapshot, i: usize) -> PodId {
        snap.pods.id(&format!("t/p{i}")).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_like_the_simulator() {
        let mut s = [10, 20, 30];
        min_max_normalize(&mut s);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [-50, 0, 50, i64::MIN];
        min_max_normalize(&mut s);
        assert_eq!(s, [0, 50, 100, 0]);
        let mut s = [7, 7];
        min_max_normalize(&mut s);
        assert_eq!(s, [0, 0]);
        // Integer division: the maximum stays the unique 100.
        let mut s = [0, 149, 150];
        min_max_normalize(&mut s);
        assert_eq!(s, [0, 99, 100]);
    }

    #[test]
    fn usable_in_any_profile() {
        use crate::model::gpu::GpuDemand;
        use crate::schedule::profile::profiles_from_json;
        use crate::schedule::{schedule, Order};
        use testing::{cluster, node};
        // The default plugins plus FGD (weight 5) and BestFit. With whole-GPU pods in the
        // workload, a share goes to the node whose device is already shared, onto that device
        // (on the free one it would leave no whole GPU there).
        let profiles = profiles_from_json(
            r#"{"profiles":[{"plugins":{"score":{"enabled":[{"name":"FGD","weight":5},
                 {"name":"BestFit"}]}},
               "pluginConfig":[{"name":"FGD","args":{"popularityThreshold":100}}]}]}"#,
        )
        .unwrap();
        let names: Vec<&str> = profiles[0].scores.iter().map(|(s, _)| s.name()).collect();
        assert!(
            names.contains(&"FGD") && names.contains(&"BestFit"),
            "{names:?}"
        );
        let snap = cluster(
            &[node(32_000, 2), node(32_000, 2)],
            &[(1000, GpuDemand::share(500), 1, "1")],
            &[(1000, GpuDemand::share(500)), (1000, GpuDemand::whole(1))],
        );
        let placement = schedule(&snap, None, &profiles, Order::Input, 0).unwrap();
        assert_eq!(placement.placed.len(), 2);
        let (_, n, devices) = placement.placed[0];
        assert_eq!((n, devices), (1, 0b10));
    }

    #[test]
    fn every_policy_is_registered() {
        for &name in POLICIES {
            let built = build(name, None).unwrap().unwrap();
            assert_eq!(built.score.unwrap().name(), name);
        }
        assert!(build("NodeAffinity", None).unwrap().is_none());
        assert!(build("BestFit", Some(&serde_json::json!({"x": 1})))
            .err()
            .unwrap()
            .to_string()
            .contains("takes no args"));
        let fgd = |a| build("FGD", Some(&a)).map(|b| b.is_some());
        assert_eq!(
            fgd(serde_json::json!({"popularityThreshold": 80})),
            Ok(true)
        );
        let e = fgd(serde_json::json!({"popularityThreshold": 0})).unwrap_err();
        assert!(e.to_string().contains("(0, 100]"), "{e}");
        assert_eq!(e.plugin.as_deref(), Some("FGD"));
        assert_eq!(e.path, "pluginConfig FGD");
        assert!(fgd(serde_json::json!({"speed": 1}))
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
        let random = serde_json::json!({"seed": 3});
        assert!(build("Random", Some(&random)).unwrap().is_some());
    }
}
