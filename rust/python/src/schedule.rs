//! `schedule()`, `Placement` and `Snapshot.apply`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube_engine_core::error::quoted;
use kube_engine_core::model::gpu::mask_indices;
use kube_engine_core::schedule::{self as core_schedule, framework, profile, Order, Placement};
use kube_engine_core::snapshot::Snapshot;
use pyo3::prelude::*;

use crate::errors::{detached, invalid_argument, unknown_name, OrRaise};
use crate::snapshot::PySnapshot;

/// Where a batch of pods went: node and GPU devices per placed pod, reasons for the others.
#[pyclass(name = "Placement", module = "kube_engine", frozen)]
pub struct PyPlacement {
    pub inner: Placement,
    /// The snapshot version this placement was computed on.
    pub snapshot: Arc<Snapshot>,
}

#[derive(IntoPyObject)]
pub struct Diagnosis {
    nodes: usize,
    reasons: BTreeMap<String, usize>,
    plugins: BTreeMap<String, &'static str>,
    pre_filter: Option<String>,
}

/// Places pending pods (all, or `pods` by `namespace/name`) with the profiles of `config` (a
/// KubeSchedulerConfiguration as JSON; None: kube-scheduler's default profile).
#[pyfunction]
#[pyo3(signature = (snapshot, pods=None, config=None, order="queue", seed=0, threads=1))]
pub fn schedule(
    py: Python<'_>,
    snapshot: &PySnapshot,
    pods: Option<Vec<String>>,
    config: Option<String>,
    order: &str,
    seed: u64,
    threads: usize,
) -> PyResult<PyPlacement> {
    let s = snapshot.get();
    let order = Order::parse(order).or_raise(py)?;
    let profiles = match &config {
        None => vec![profile::default_profile()],
        Some(json) => profile::profiles_from_json(json).or_raise(py)?,
    };
    let ids = match pods {
        None => None,
        Some(keys) => Some(
            keys.iter()
                .map(|k| {
                    s.pods.id(k).ok_or_else(|| {
                        unknown_name(py, "pods", format!("unknown pod {}", quoted(k)))
                    })
                })
                .collect::<PyResult<Vec<_>>>()?,
        ),
    };
    let snap = s.clone();
    let result = detached(py, move || {
        core_schedule::schedule_on_threads(&snap, ids.as_deref(), &profiles, order, seed, threads)
    })?;
    let inner = result.or_raise(py)?;
    Ok(PyPlacement { inner, snapshot: s })
}

/// A node a filter rejected: the plugin, and its reasons.
#[derive(IntoPyObject)]
pub struct Rejection {
    plugin: &'static str,
    reasons: Vec<String>,
}

/// One cycle laid open (see `kube_engine_core::schedule::framework::Explanation`), by names.
#[derive(IntoPyObject)]
pub struct Explanation {
    profile: String,
    pre_filter: Option<Rejection>,
    filters: BTreeMap<String, Option<Rejection>>,
    scores: BTreeMap<&'static str, Option<BTreeMap<String, i64>>>,
    weights: BTreeMap<&'static str, i64>,
    totals: BTreeMap<String, i64>,
}

/// Filters every node and scores every feasible one for pending pod `pod` (`namespace/name`), as
/// the first cycle of `schedule` would, and returns what each plugin found.
#[pyfunction]
#[pyo3(signature = (snapshot, pod, config=None))]
pub fn explain(
    py: Python<'_>,
    snapshot: &PySnapshot,
    pod: &str,
    config: Option<String>,
) -> PyResult<Explanation> {
    let s = snapshot.get();
    let profiles = match &config {
        None => vec![profile::default_profile()],
        Some(json) => profile::profiles_from_json(json).or_raise(py)?,
    };
    let p = s
        .pods
        .id(pod)
        .ok_or_else(|| unknown_name(py, "pod", format!("unknown pod {}", quoted(pod))))?;
    let snap = s.clone();
    let (e, profile) = detached(py, move || {
        core_schedule::explain(&snap, p, &profiles).map(|(e, i)| (e, profiles[i].name.clone()))
    })?
    .or_raise(py)?;
    let node = |n: u32| s.nodes.name[n as usize].clone();
    let by_node = |values: &[i64]| -> BTreeMap<String, i64> {
        e.feasible
            .iter()
            .map(|&n| node(n))
            .zip(values.iter().copied())
            .collect()
    };
    let rejection = |r: &framework::Rejection| Rejection {
        plugin: r.plugin,
        reasons: r.reasons.clone(),
    };
    Ok(Explanation {
        profile,
        pre_filter: e.pre_filter.as_ref().map(|(plugin, msg)| Rejection {
            plugin,
            reasons: vec![msg.clone()],
        }),
        filters: (0..s.nodes.len() as u32)
            .map(|n| (node(n), e.filters[n as usize].as_ref().map(rejection)))
            .collect(),
        scores: e
            .scores
            .iter()
            .map(|(name, _, scores)| (*name, scores.as_deref().map(by_node)))
            .collect(),
        weights: e.scores.iter().map(|(name, w, _)| (*name, *w)).collect(),
        totals: by_node(&e.totals),
    })
}

#[pymethods]
impl PyPlacement {
    /// `{"namespace/name": node}` for every placed pod, in placement order.
    #[getter]
    fn assignments(&self) -> BTreeMap<String, String> {
        let s = &self.snapshot;
        self.inner
            .placed
            .iter()
            .map(|&(p, n, _)| (s.pod_key(p), s.nodes.name[n as usize].clone()))
            .collect()
    }

    /// `{"namespace/name": reason}` for every pod no node could take.
    #[getter]
    fn unschedulable(&self) -> BTreeMap<String, String> {
        let s = &self.snapshot;
        self.inner
            .unschedulable
            .iter()
            .map(|(p, e)| (s.pod_key(*p), e.to_string()))
            .collect()
    }

    /// `{"namespace/name": diagnosis}` for every pod no node could take: the numbers behind its
    /// message (nodes, nodes per reason, the plugin behind each reason, a PreFilter rejection).
    #[getter]
    fn diagnosis(&self) -> BTreeMap<String, Diagnosis> {
        let s = &self.snapshot;
        self.inner
            .unschedulable
            .iter()
            .map(|(p, e)| {
                let d = Diagnosis {
                    nodes: e.nodes,
                    reasons: e.reasons.clone(),
                    plugins: e.plugins.clone(),
                    pre_filter: e.pre_filter.clone(),
                };
                (s.pod_key(*p), d)
            })
            .collect()
    }

    /// Pods whose `schedulerName` names none of the profiles (kube-scheduler leaves them alone).
    #[getter]
    fn skipped(&self) -> Vec<String> {
        self.inner
            .skipped
            .iter()
            .map(|&p| self.snapshot.pod_key(p))
            .collect()
    }

    /// `{"namespace/name": [device, ...]}` for placed pods that hold GPUs.
    #[getter]
    fn gpu_devices(&self) -> BTreeMap<String, Vec<u32>> {
        let s = &self.snapshot;
        self.inner
            .placed
            .iter()
            .filter(|&&(_, _, d)| d != 0)
            .map(|&(p, _, d)| (s.pod_key(p), mask_indices(d).collect()))
            .collect()
    }

    /// Placed pods in placement order: `(namespace/name, node)`.
    fn order(&self) -> Vec<(String, String)> {
        let s = &self.snapshot;
        self.inner
            .placed
            .iter()
            .map(|&(p, n, _)| (s.pod_key(p), s.nodes.name[n as usize].clone()))
            .collect()
    }

    /// `{"assignments": {pod: node}, "unschedulable": {pod: reason}}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("assignments", self.assignments())?;
        d.set_item("unschedulable", self.unschedulable())?;
        Ok(d)
    }

    /// A plain-text table: one line per pod with its node and GPU devices, or why it is pending.
    fn table(&self) -> String {
        let s = &self.snapshot;
        let mut rows: Vec<[String; 3]> =
            vec![["POD".into(), "NODE".into(), "GPU DEVICES / REASON".into()]];
        for &(p, n, d) in &self.inner.placed {
            let devices = mask_indices(d)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",");
            rows.push([s.pod_key(p), s.nodes.name[n as usize].clone(), devices]);
        }
        for (p, e) in &self.inner.unschedulable {
            rows.push([s.pod_key(*p), "<none>".into(), e.to_string()]);
        }
        let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
        rows.iter()
            .map(|r| {
                format!("{:w0$}  {:w1$}  {}", r[0], r[1], r[2])
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn __len__(&self) -> usize {
        self.inner.placed.len() + self.inner.unschedulable.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Placement(placed={}, unschedulable={})",
            self.inner.placed.len(),
            self.inner.unschedulable.len()
        )
    }
}

/// Binds the placement's pods in `snapshot` (in memory; nothing touches a cluster).
pub fn apply_placement(
    py: Python<'_>,
    snapshot: &PySnapshot,
    placement: &PyPlacement,
) -> PyResult<()> {
    let current = snapshot.get();
    if !Arc::ptr_eq(&current, &placement.snapshot) {
        return Err(invalid_argument(
            py,
            "placement",
            "this placement was computed for another state of the snapshot (it was changed or it is a \
             different snapshot); schedule again"
                .into(),
        ));
    }
    let mut next = (*current).clone();
    next.current = placement.inner.assignment.clone();
    if !snapshot.replace(&current, next) {
        return Err(invalid_argument(
            py,
            "placement",
            "the snapshot changed while applying; schedule again".into(),
        ));
    }
    Ok(())
}
