//! `plan()`: the ordered actions from the snapshot's placement to a target one, as plain data
//! for `kube_engine.planning`.

use std::collections::HashMap;

use kube_engine_core::error::quoted;
use kube_engine_core::model::gpu::mask_indices;
use kube_engine_core::plan::{self as core_plan, Limits, PlanOptions, Target};
use kube_engine_core::rebalance::PinOptions;
use kube_engine_core::schedule::profile::{default_profile, profiles_from_json};
use kube_engine_core::snapshot::{NodeId, PodId, Snapshot};
use pyo3::prelude::*;

use crate::args::{device_masks, extract};
use crate::errors::{detached, invalid_argument, unknown_name, OrRaise};
use crate::snapshot::PySnapshot;

#[derive(IntoPyObject)]
pub struct PodRef {
    namespace: String,
    name: String,
    uid: String,
    resource_version: String,
}

#[derive(IntoPyObject)]
pub struct Step {
    pod: PodRef,
    from: Option<String>,
    to: String,
    gpu_devices: Vec<u32>,
    detour: bool,
    predicted: Option<String>,
    budget: Option<String>,
    budget_left: Option<u32>,
    controller: Option<String>,
    scheduler_name: String,
}

#[derive(IntoPyObject)]
pub struct Kept {
    pod: String,
    to: String,
    kind: &'static str,
    reason: String,
}

#[derive(IntoPyObject)]
pub struct NodeRef {
    name: String,
    resource_version: String,
}

#[derive(IntoPyObject)]
pub struct RawPlan {
    cordon: Vec<NodeRef>,
    emptied: Vec<String>,
    waves: Vec<Vec<Step>>,
    kept: Vec<Kept>,
}

fn pod_ref(s: &Snapshot, p: PodId) -> PodRef {
    let i = p as usize;
    PodRef {
        namespace: s.symbols.resolve(s.pods.namespace[i]).to_string(),
        name: s.pods.name[i].clone(),
        uid: s.pods.uid[i].clone(),
        resource_version: s.pods.resource_version[i].clone(),
    }
}

fn raw(s: &Snapshot, plan: core_plan::Plan, predicted: &[Vec<Option<NodeId>>]) -> RawPlan {
    let node = |n: NodeId| s.nodes.name[n as usize].clone();
    let pdb = |b: usize| {
        let m = &s.pdbs[b].metadata;
        format!("{}/{}", m.namespace.as_deref().unwrap_or(""), m.name)
    };
    RawPlan {
        cordon: plan
            .cordon
            .iter()
            .map(|&n| NodeRef {
                name: node(n),
                resource_version: s.nodes.resource_version[n as usize].clone(),
            })
            .collect(),
        emptied: plan.emptied.iter().map(|&n| node(n)).collect(),
        waves: plan
            .waves
            .iter()
            .zip(predicted)
            .map(|(w, landed)| {
                w.iter()
                    .zip(landed)
                    .map(|(st, landed)| Step {
                        pod: pod_ref(s, st.pod),
                        from: st.from.map(node),
                        to: node(st.to),
                        gpu_devices: mask_indices(st.devices).collect(),
                        detour: st.detour,
                        predicted: landed.map(node),
                        budget: st.budget.map(|(b, _)| pdb(b)),
                        budget_left: st.budget.map(|(_, left)| left),
                        scheduler_name: s
                            .symbols
                            .resolve(s.pods.scheduler_name[st.pod as usize])
                            .to_string(),
                        controller: s.pods.owner[st.pod as usize]
                            .as_ref()
                            .map(|o| format!("{}/{}", s.symbols.resolve(o.kind), o.name)),
                    })
                    .collect()
            })
            .collect(),
        kept: plan
            .kept
            .iter()
            .map(|k| Kept {
                pod: s.pod_key(k.pod),
                to: node(k.to),
                kind: k.why.kind(),
                reason: k.why.describe(s),
            })
            .collect(),
    }
}

/// The plan from the snapshot's placement to `target` (`{pod: node}`; pods not named stay).
#[pyfunction]
#[pyo3(signature = (
    snapshot, target, gpu_devices=None, config=None, *, max_per_node=None,
    max_per_namespace=None, max_total=None, max_per_wave=None,
    max_unavailable_per_workload=None, allow_local_storage=None, allow_bare=false, cordon=true,
    moved_since=None, binding_scheduler=None
))]
#[allow(clippy::too_many_arguments)]
pub fn plan(
    py: Python<'_>,
    snapshot: &PySnapshot,
    target: HashMap<String, String>,
    gpu_devices: Option<&Bound<'_, PyAny>>,
    config: Option<String>,
    max_per_node: Option<u32>,
    max_per_namespace: Option<u32>,
    max_total: Option<u32>,
    max_per_wave: Option<u32>,
    max_unavailable_per_workload: Option<u32>,
    allow_local_storage: Option<&Bound<'_, PyAny>>,
    allow_bare: bool,
    cordon: bool,
    moved_since: Option<i64>,
    binding_scheduler: Option<String>,
) -> PyResult<RawPlan> {
    let s = snapshot.get();
    for (name, value) in [
        ("max_per_wave", max_per_wave),
        ("max_unavailable_per_workload", max_unavailable_per_workload),
    ] {
        if value == Some(0) {
            let message =
                format!("{name} must be at least 1 (0 would allow no wave at all), got 0");
            return Err(invalid_argument(py, name, message));
        }
    }
    // Two of the profile: one decides where pods fit as the plan is sequenced, the other (which
    // the prediction changes) places the replacements.
    let first = |json: &str| -> PyResult<_> {
        Ok(profiles_from_json(json)
            .or_raise(py)?
            .into_iter()
            .next()
            .expect("a configuration has a profile"))
    };
    let (profile, landing) = match &config {
        None => (default_profile(), default_profile()),
        Some(json) => (first(json)?, first(json)?),
    };
    let mut moves = HashMap::with_capacity(target.len());
    for (pod, node) in &target {
        let p = s.pods.id(pod).ok_or_else(|| {
            unknown_name(py, "target", format!("target: unknown pod {}", quoted(pod)))
        })?;
        let to = s.nodes.id(node).ok_or_else(|| {
            unknown_name(
                py,
                "target",
                format!("target[{}]: unknown node {}", quoted(pod), quoted(node)),
            )
        })?;
        moves.insert(p, to);
    }
    let mut devices = device_masks(&s, gpu_devices, "target", |p| moves.get(&p).copied())?;
    let mut targets: Vec<Target> = moves
        .into_iter()
        .map(|(pod, to)| Target {
            pod,
            to,
            devices: devices.remove(&pod),
        })
        .collect();
    targets.sort_unstable_by_key(|t| t.pod);
    let opts = PlanOptions {
        limits: Limits {
            max_per_node,
            max_per_namespace,
            max_total,
            max_per_wave,
            max_unavailable_per_workload,
        },
        pins: PinOptions {
            allow_local_storage: crate::rebalance::local_kinds(py, allow_local_storage)?,
            allow_bare,
            moved_since,
            ..Default::default()
        },
        cordon,
    };
    let snap = s.clone();
    detached(py, move || {
        core_plan::plan(&snap, &targets, &profile, &opts).map(|p| {
            let predicted = core_plan::predict(&snap, &p, landing, binding_scheduler.as_deref(), 0);
            raw(&snap, p, &predicted)
        })
    })?
    .or_raise(py)
}

/// Per pod covered by at least one PodDisruptionBudget, the budgets (`namespace/name`) covering
/// it: what the Eviction API checks, for naming them in a report.
#[pyfunction]
pub fn covering_budgets(
    py: Python<'_>,
    snapshot: &PySnapshot,
) -> PyResult<HashMap<String, Vec<String>>> {
    let s = snapshot.get();
    detached(py, move || {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for b in kube_engine_core::rebalance::budgets(&s) {
            let m = &s.pdbs[b.pdb].metadata;
            let name = format!("{}/{}", m.namespace.as_deref().unwrap_or(""), m.name);
            for p in b.pods {
                out.entry(s.pod_key(p)).or_default().push(name.clone());
            }
        }
        out
    })
}

/// Per PodDisruptionBudget (`namespace/name`), the status the disruption controller would report
/// from the snapshot's pods (`budgets::status_by_spec`), whatever status the object carries.
#[pyfunction]
pub fn budget_status(
    py: Python<'_>,
    snapshot: &Bound<'_, PyAny>,
) -> PyResult<HashMap<String, HashMap<&'static str, i32>>> {
    let s = extract::<PyRef<'_, PySnapshot>>(snapshot, "snapshot", "a Snapshot")?.get();
    detached(py, move || {
        kube_engine_core::rebalance::budgets(&s)
            .into_iter()
            .map(|b| {
                let pdb = &s.pdbs[b.pdb];
                let m = &pdb.metadata;
                let name = format!("{}/{}", m.namespace.as_deref().unwrap_or(""), m.name);
                let st = kube_engine_core::rebalance::budgets::status_by_spec(&s, pdb, &b.pods);
                let fields = HashMap::from([
                    ("expectedPods", st.expected_pods),
                    ("currentHealthy", st.current_healthy),
                    ("desiredHealthy", st.desired_healthy),
                    ("disruptionsAllowed", st.disruptions_allowed),
                ]);
                (name, fields)
            })
            .collect()
    })
}
