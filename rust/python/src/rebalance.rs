//! `rebalance_problem()`: what a rebalance of the snapshot decides over, as plain data for the
//! Python model builder.

use std::collections::BTreeMap;

use kube_engine_core::error::{ArgumentError, ConfigError as CoreConfigError, Error};
use kube_engine_core::model::pod::LocalVolumes;
use kube_engine_core::rebalance::{self, PinOptions};
use kube_engine_core::schedule::profile;
use kube_engine_core::snapshot::Snapshot;
use pyo3::prelude::*;

use crate::errors::{detached, invalid_argument, to_py, OrRaise};
use crate::snapshot::PySnapshot;

#[derive(IntoPyObject)]
pub struct PodClass {
    pods: Vec<String>,
    nodes: Vec<String>,
    controller: Option<String>,
    request: BTreeMap<String, i64>,
    gpu_count: u32,
    gpu_milli: u32,
    candidates: Vec<u32>,
    interacts: bool,
}

#[derive(IntoPyObject)]
pub struct Budget {
    name: String,
    allowed: u32,
    pods: Vec<String>,
}

#[derive(IntoPyObject)]
pub struct InterPodRule {
    kind: &'static str,
    domains: usize,
    owners: Vec<u32>,
    fixed_owners: Vec<(u32, u32)>,
    counted: Vec<u32>,
    fixed_counted: Vec<(u32, u32)>,
    counts_itself: bool,
    max_skew: u32,
    min_domains: u32,
    name: String,
}

#[derive(IntoPyObject)]
pub struct RebalanceProblem {
    nodes: Vec<String>,
    free: BTreeMap<String, Vec<i64>>,
    gpu_free: Vec<Vec<u32>>,
    pinned: BTreeMap<String, String>,
    classes: Vec<PodClass>,
    budgets: Vec<Budget>,
    domains: Vec<Vec<i32>>,
    rules: Vec<InterPodRule>,
}

/// What may move, with the nodes kept as they are and those that take no pods, by name.
/// `allow_local_storage` from Python: `True` (every kind), `False` or `None` (none), or the kinds'
/// names (`["emptyDir"]`).
pub(crate) fn local_kinds(
    py: Python<'_>,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<LocalVolumes> {
    let Some(value) = value else {
        return Ok(LocalVolumes::NONE);
    };
    if let Ok(all) = value.extract::<bool>() {
        return Ok(if all {
            LocalVolumes::ALL
        } else {
            LocalVolumes::NONE
        });
    }
    let names: Vec<String> = value.extract().map_err(|_| {
        let message =
            format!("allow_local_storage must be a bool or a list of volume kinds, got {value}");
        to_py(
            py,
            ArgumentError::wrong_type("allow_local_storage", message).into(),
        )
    })?;
    names.iter().try_fold(LocalVolumes::NONE, |kinds, name| {
        let kind = LocalVolumes::named(name).ok_or_else(|| {
            let known: Vec<&str> = LocalVolumes::NAMES.iter().map(|(n, _)| *n).collect();
            let message = format!(
                "allow_local_storage: unknown volume kind {name:?} (known: {})",
                known.join(", ")
            );
            invalid_argument(py, "allow_local_storage", message)
        })?;
        Ok(kinds.with(kind))
    })
}

pub(crate) fn pin_options(
    py: Python<'_>,
    snap: &Snapshot,
    allow_local_storage: LocalVolumes,
    allow_bare: bool,
    keep_nodes: &[String],
    exclude_nodes: &[String],
    moved_since: Option<i64>,
) -> PyResult<PinOptions> {
    let mark = |names: &[String], what: &str| -> PyResult<Vec<bool>> {
        let mut out = vec![false; snap.nodes.len()];
        for name in names {
            let n = snap.nodes.id(name).ok_or_else(|| {
                invalid_argument(
                    py,
                    what,
                    format!("{what}: node {name:?} is not in the snapshot"),
                )
            })?;
            out[n as usize] = true;
        }
        Ok(out)
    };
    Ok(PinOptions {
        allow_local_storage,
        allow_bare,
        keep: mark(keep_nodes, "keep_nodes")?,
        exclude: mark(exclude_nodes, "exclude_nodes")?,
        moved_since,
    })
}

/// `config`: a KubeSchedulerConfiguration as JSON, whose first profile's filters decide where
/// pods may go (default: the default profile).
#[pyfunction]
#[pyo3(signature = (
    snapshot, config=None, allow_local_storage=None, allow_bare=false, keep_nodes=vec![],
    exclude_nodes=vec![], moved_since=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn rebalance_problem(
    py: Python<'_>,
    snapshot: &PySnapshot,
    config: Option<String>,
    allow_local_storage: Option<&Bound<'_, PyAny>>,
    allow_bare: bool,
    keep_nodes: Vec<String>,
    exclude_nodes: Vec<String>,
    moved_since: Option<i64>,
) -> PyResult<RebalanceProblem> {
    let s = snapshot.get();
    let profile = match &config {
        None => profile::default_profile(),
        Some(json) => profile::profiles_from_json(json)
            .or_raise(py)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                let e = CoreConfigError::new("the configuration has no profile");
                to_py(py, Error::Config(e))
            })?,
    };
    let snap = s.clone();
    let opts = pin_options(
        py,
        &s,
        local_kinds(py, allow_local_storage)?,
        allow_bare,
        &keep_nodes,
        &exclude_nodes,
        moved_since,
    )?;
    let pr = detached(py, move || rebalance::problem(&snap, &profile, &opts))?;
    let key = |p: u32| s.pod_key(p);
    let node = |p: u32| {
        let n = s.current.node[p as usize].expect("classes hold bound pods");
        s.nodes.name[n as usize].clone()
    };
    let names = s.resources.names();
    let classes = pr
        .classes
        .iter()
        .map(|c| {
            let first = c.pods[0] as usize;
            let gpu = s.pods.gpu[first];
            PodClass {
                pods: c.pods.iter().map(|&p| key(p)).collect(),
                nodes: c.pods.iter().map(|&p| node(p)).collect(),
                controller: s.pods.owner[first]
                    .as_ref()
                    .map(|o| format!("{}/{}", s.symbols.resolve(o.kind), o.name)),
                request: names
                    .iter()
                    .zip(s.pods.requests.row(first))
                    .filter(|(_, &v)| v != 0)
                    .map(|(n, &v)| (n.clone(), v))
                    .collect(),
                gpu_count: gpu.count,
                gpu_milli: gpu.milli,
                candidates: c.candidates.clone(),
                interacts: c.interacts,
            }
        })
        .collect();
    let budgets = pr
        .budgets
        .iter()
        .map(|b| {
            let pdb = &s.pdbs[b.pdb];
            let ns = pdb.metadata.namespace.as_deref().unwrap_or("default");
            Budget {
                name: format!("{ns}/{}", pdb.metadata.name),
                allowed: b.allowed,
                pods: b.pods.iter().map(|&p| key(p)).collect(),
            }
        })
        .collect();
    Ok(RebalanceProblem {
        nodes: s.nodes.name.clone(),
        free: names
            .iter()
            .enumerate()
            .map(|(r, n)| {
                let column = (0..s.nodes.len()).map(|i| pr.free.get(i, r)).collect();
                (n.clone(), column)
            })
            .collect(),
        gpu_free: pr.gpu_free,
        pinned: pr
            .pinned
            .iter()
            .map(|&(p, why)| (key(p), why.as_str().to_string()))
            .collect(),
        classes,
        budgets,
        domains: pr.inter_pod.domains.into_iter().map(|d| d.domain).collect(),
        rules: pr
            .inter_pod
            .rules
            .into_iter()
            .map(|r| InterPodRule {
                kind: r.kind.as_str(),
                domains: r.domains,
                owners: r.owners,
                fixed_owners: r.fixed_owners,
                counted: r.counted,
                fixed_counted: r.fixed_counted,
                counts_itself: r.counts_itself,
                max_skew: r.max_skew,
                min_domains: r.min_domains,
                name: r.name,
            })
            .collect(),
    })
}

#[derive(IntoPyObject)]
pub struct PodMove {
    pod: String,
    from: String,
    to: String,
    gpu_devices: Vec<u32>,
}

#[derive(IntoPyObject)]
pub struct DrainPlan {
    moves: Vec<PodMove>,
    freed: Vec<String>,
}

/// The packing heuristic's plan (see `kube_engine_core::rebalance::drain`).
#[pyfunction]
#[pyo3(signature = (
    snapshot, max_moves=None, allow_local_storage=None, allow_bare=false, seed=0,
    keep_nodes=vec![], exclude_nodes=vec![], moved_since=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn drain_plan(
    py: Python<'_>,
    snapshot: &PySnapshot,
    max_moves: Option<usize>,
    allow_local_storage: Option<&Bound<'_, PyAny>>,
    allow_bare: bool,
    seed: u64,
    keep_nodes: Vec<String>,
    exclude_nodes: Vec<String>,
    moved_since: Option<i64>,
) -> PyResult<DrainPlan> {
    let s = snapshot.get();
    let snap = s.clone();
    let opts = rebalance::DrainOptions {
        max_moves,
        pins: pin_options(
            py,
            &s,
            local_kinds(py, allow_local_storage)?,
            allow_bare,
            &keep_nodes,
            &exclude_nodes,
            moved_since,
        )?,
        seed,
    };
    let plan = detached(py, move || rebalance::drain(&snap, opts))?.or_raise(py)?;
    let node = |n: u32| s.nodes.name[n as usize].clone();
    Ok(DrainPlan {
        moves: plan
            .moves
            .iter()
            .map(|m| PodMove {
                pod: s.pod_key(m.pod),
                from: node(m.from),
                to: node(m.to),
                gpu_devices: kube_engine_core::model::gpu::mask_indices(m.devices).collect(),
            })
            .collect(),
        freed: plan.freed.iter().map(|&n| node(n)).collect(),
    })
}
