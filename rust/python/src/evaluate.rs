//! `evaluate()`: placement quality.

use std::collections::HashMap;

use kube_engine_core::error::{quoted, Error};
use kube_engine_core::metrics::{self, Evaluation};
use kube_engine_core::snapshot::Snapshot;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::args::{by_pod, device_masks, extract};
use crate::errors::{detached, unknown_name, OrRaise};
use crate::snapshot::PySnapshot;

/// Placement quality of a snapshot (or of another placement of its pods).
#[pyclass(name = "Evaluation", module = "kube_engine", frozen)]
pub struct PyEvaluation {
    inner: Evaluation,
    snapshot: std::sync::Arc<Snapshot>,
}

/// `placement` maps `namespace/name` to a node name (or None: unbound); pods not named stay where
/// they are. `gpu_devices` gives moved pods' GPU device indices on their node (others get devices
/// by best fit).
#[pyfunction]
#[pyo3(signature = (snapshot, placement=None, gpu_devices=None))]
pub fn evaluate(
    py: Python<'_>,
    snapshot: &Bound<'_, PyAny>,
    placement: Option<&Bound<'_, PyAny>>,
    gpu_devices: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyEvaluation> {
    let s = extract::<PyRef<'_, PySnapshot>>(snapshot, "snapshot", "a Snapshot")?.get();
    let mut targets = HashMap::new();
    if let Some(placement) = placement.filter(|p| !p.is_none()) {
        for (p, pod, node) in by_pod(&s, placement, "placement")? {
            let at = format!("placement[{}]", quoted(&pod));
            let node: Option<String> = extract(&node, &at, "a node name or None")?;
            let n = match node {
                None => None,
                Some(name) => Some(s.nodes.id(&name).ok_or_else(|| {
                    unknown_name(py, "placement", format!("unknown node {}", quoted(&name)))
                })?),
            };
            targets.insert(p, n);
        }
    }
    let mut devices = device_masks(&s, gpu_devices, "placement", |p| {
        targets.get(&p).copied().flatten()
    })?;
    let mut moves: Vec<_> = targets
        .into_iter()
        .map(|(p, n)| (p, n, devices.remove(&p)))
        .collect();
    moves.sort_unstable();
    let snap = s.clone();
    let inner = detached(py, move || {
        if moves.is_empty() {
            Ok(metrics::evaluate(&snap, &snap.current))
        } else {
            let a = snap.assignment_with(&moves)?;
            Ok::<_, Error>(metrics::evaluate(&snap, &a))
        }
    })?
    .or_raise(py)?;
    Ok(PyEvaluation { inner, snapshot: s })
}

#[pymethods]
impl PyEvaluation {
    #[getter]
    fn nodes(&self) -> usize {
        self.inner.nodes
    }
    #[getter]
    fn nodes_used(&self) -> usize {
        self.inner.nodes_used
    }
    #[getter]
    fn pods(&self) -> usize {
        self.inner.pods
    }
    #[getter]
    fn pods_active(&self) -> usize {
        self.inner.pods_active
    }
    #[getter]
    fn pods_bound(&self) -> usize {
        self.inner.pods_bound
    }
    #[getter]
    fn pods_pending(&self) -> usize {
        self.inner.pods_pending
    }

    /// Per resource: requested, pending, allocatable, utilisation and per-node balance.
    #[getter]
    fn resources<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for r in &self.inner.resources {
            let d = PyDict::new(py);
            d.set_item("requested", r.requested)?;
            d.set_item("pending", r.pending)?;
            d.set_item("allocatable", r.allocatable)?;
            d.set_item("utilisation", r.utilisation)?;
            d.set_item("node_mean", r.node_mean)?;
            d.set_item("node_std", r.node_std)?;
            d.set_item("node_max", r.node_max)?;
            out.set_item(&r.name, d)?;
        }
        Ok(out)
    }

    #[getter]
    fn gpu<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = &self.inner.gpu;
        let d = PyDict::new(py);
        d.set_item("devices", g.devices)?;
        d.set_item("allocated_milli", g.allocated_milli)?;
        d.set_item("pending_milli", g.pending_milli)?;
        d.set_item("utilisation", g.utilisation)?;
        d.set_item("whole_free", g.whole_free)?;
        d.set_item("fragmentation_milli", g.fragmentation_milli)?;
        d.set_item("fragmentation_ratio", g.fragmentation_ratio)?;
        d.set_item("fragmentation_pct", g.fragmentation_pct)?;
        Ok(d)
    }

    #[getter]
    fn lower_bounds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let b = &self.inner.lower_bounds;
        let d = PyDict::new(py);
        d.set_item("l1", b.l1)?;
        d.set_item("strong", b.strong)?;
        d.set_item("infeasible", b.infeasible)?;
        Ok(d)
    }

    /// Every violation: `{"kind", "node", "pod" (or None), "detail"}`.
    #[getter]
    fn violations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let s = &self.snapshot;
        let out = PyList::empty(py);
        for v in &self.inner.violations {
            let d = PyDict::new(py);
            d.set_item("kind", v.kind.as_str())?;
            d.set_item("node", &s.nodes.name[v.node as usize])?;
            d.set_item("pod", v.pod.map(|p| s.pod_key(p)))?;
            d.set_item("detail", &v.detail)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Violations counted by kind.
    fn violation_counts(&self) -> HashMap<&'static str, usize> {
        let mut out = HashMap::new();
        for v in &self.inner.violations {
            *out.entry(v.kind.as_str()).or_insert(0) += 1;
        }
        out
    }

    /// Per-node requested/allocatable of one resource (`nvidia.com/gpu` gives GPU milli
    /// allocated / devices × 1000); None where the node offers none of it.
    /// Names of the nodes counted in `nodes_used`.
    fn nodes_in_use(&self) -> Vec<String> {
        let s = &self.snapshot;
        (0..s.nodes.len())
            .filter(|&n| self.inner.node_in_use[n])
            .map(|n| s.nodes.name[n].clone())
            .collect()
    }

    fn node_utilisation(
        &self,
        py: Python<'_>,
        resource: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Option<f64>>> {
        let resource: String = extract(resource, "resource", "a resource name")?;
        let resource = resource.as_str();
        let s = &self.snapshot;
        if resource == kube_engine_core::model::gpu::GPU_RESOURCE {
            return Ok((0..s.nodes.len())
                .map(|n| {
                    let cap = u64::from(s.nodes.gpu_devices[n]) * 1000;
                    (cap > 0).then(|| self.inner.node_gpu_milli[n] as f64 / cap as f64)
                })
                .collect());
        }
        let r = s.resources.get(resource).ok_or_else(|| {
            unknown_name(
                py,
                "resource",
                format!("unknown resource {}", quoted(resource)),
            )
        })?;
        Ok((0..s.nodes.len())
            .map(|n| {
                let cap = s.nodes.allocatable.get(n, r);
                (cap > 0).then(|| self.inner.node_requested.get(n, r) as f64 / cap as f64)
            })
            .collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "Evaluation(nodes_used={}/{}, pods_bound={}, pods_pending={}, violations={}, lower_bound={})",
            self.inner.nodes_used,
            self.inner.nodes,
            self.inner.pods_bound,
            self.inner.pods_pending,
            self.inner.violations.len(),
            self.inner.lower_bounds.strong
        )
    }
}
