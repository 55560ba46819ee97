//! `Snapshot`: a parsed cluster, immutable and shared.

use std::sync::{Arc, RwLock};

use kube_engine_core::error::cut;
use kube_engine_core::snapshot::{self, Snapshot};
use kube_engine_core::Quantity;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBool, PyBytes};

use crate::args::{extract, shown};
use crate::errors::{detached, invalid_argument, unknown_name, OrRaise};

/// A cluster snapshot: nodes, pods and PodDisruptionBudgets, parsed once into columns.
#[pyclass(name = "Snapshot", module = "kube_engine", frozen)]
pub struct PySnapshot {
    // Replaced as a whole by `apply`; readers take the current version.
    state: RwLock<Arc<Snapshot>>,
}

impl PySnapshot {
    pub fn new(s: Snapshot) -> Self {
        PySnapshot {
            state: RwLock::new(Arc::new(s)),
        }
    }

    /// The snapshot as it is now.
    pub fn get(&self) -> Arc<Snapshot> {
        self.state.read().expect("snapshot lock").clone()
    }

    /// Replaces the current version with `next`, if the current one is still `expected`.
    pub fn replace(&self, expected: &Arc<Snapshot>, next: Snapshot) -> bool {
        let mut guard = self.state.write().expect("snapshot lock");
        if !Arc::ptr_eq(&guard, expected) {
            return false;
        }
        *guard = Arc::new(next);
        true
    }
}

/// Bytes from Python are borrowed, not copied (`PyBackedBytes` keeps them alive without the GIL).
fn parse<D: AsRef<[u8]> + Send>(
    py: Python<'_>,
    docs: Vec<D>,
    opts: snapshot::ParseOptions,
) -> PyResult<PySnapshot> {
    let result = detached(py, move || {
        let refs: Vec<&[u8]> = docs.iter().map(AsRef::as_ref).collect();
        snapshot::parse_documents_with(&refs, opts)
    })?;
    result.map(PySnapshot::new).or_raise(py)
}

/// The parse options of the constructors' keyword arguments; `max_input_bytes` a positive
/// integer or None (the default limit).
fn options(
    strict: Option<&Bound<'_, PyAny>>,
    max_input_bytes: Option<&Bound<'_, PyAny>>,
) -> PyResult<snapshot::ParseOptions> {
    let mut opts = snapshot::ParseOptions::default();
    if let Some(strict) = strict.filter(|v| !v.is_none()) {
        opts.strict = extract(strict, "strict", "True or False")?;
    }
    if let Some(limit) = max_input_bytes.filter(|v| !v.is_none()) {
        // Worded as the Python readers word it (`kube_engine.arguments.integer`).
        opts.max_input_bytes = limit
            .extract::<u64>()
            .ok()
            .filter(|&n| n > 0 && !limit.is_instance_of::<PyBool>())
            .ok_or_else(|| {
                let message = format!(
                    "max_input_bytes must be an integer in 1..{}, got {}",
                    u64::MAX,
                    shown(limit)
                );
                invalid_argument(limit.py(), "max_input_bytes", message)
            })?;
    }
    Ok(opts)
}

#[pymethods]
impl PySnapshot {
    /// Reads a snapshot file: a Kubernetes `List` (or NodeList / PodList /
    /// PodDisruptionBudgetList) as JSON, plain or gzip-compressed. With `strict`, a pod bound
    /// to a node the input lacks is an error; otherwise it is left out (see `left_out`).
    /// `max_input_bytes` bounds the file, and its JSON once inflated (default 4 GiB).
    #[staticmethod]
    #[pyo3(signature = (path, *, strict = None, max_input_bytes = None))]
    fn from_file(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        strict: Option<&Bound<'_, PyAny>>,
        max_input_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let path: std::path::PathBuf = extract(path, "path", "a path (str or os.PathLike)")?;
        let opts = options(strict, max_input_bytes)?;
        let result = detached(py, || snapshot::parse_file(&path, opts))?;
        result.map(PySnapshot::new).or_raise(py)
    }

    /// Parses one JSON document (plain or gzip bytes).
    #[staticmethod]
    #[pyo3(signature = (data, *, strict = None, max_input_bytes = None))]
    fn from_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        strict: Option<&Bound<'_, PyAny>>,
        max_input_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let data: PyBackedBytes = extract(data, "data", "bytes")?;
        parse(py, vec![data], options(strict, max_input_bytes)?)
    }

    /// Parses several documents (e.g. the pages of paginated list calls) into one snapshot.
    #[staticmethod]
    #[pyo3(signature = (docs, *, strict = None, max_input_bytes = None))]
    fn from_documents(
        py: Python<'_>,
        docs: &Bound<'_, PyAny>,
        strict: Option<&Bound<'_, PyAny>>,
        max_input_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let docs: Vec<PyBackedBytes> = extract(docs, "docs", "a list of bytes")?;
        parse(py, docs, options(strict, max_input_bytes)?)
    }

    /// Pods of the input left out because the node they are bound to is not in it:
    /// `(namespace/name, node)`, in input order.
    #[getter]
    fn left_out(&self) -> Vec<(String, String)> {
        self.get()
            .left_out
            .iter()
            .map(|l| (l.pod.clone(), l.node.clone()))
            .collect()
    }

    #[getter]
    fn num_nodes(&self) -> usize {
        self.get().nodes.len()
    }

    #[getter]
    fn num_pods(&self) -> usize {
        self.get().pods.len()
    }

    #[getter]
    fn num_pdbs(&self) -> usize {
        self.get().pdbs.len()
    }

    /// Resource names in id order (cpu, memory, pods, ephemeral-storage, then extended ones).
    fn resource_names(&self) -> Vec<String> {
        self.get().resources.names().to_vec()
    }

    fn node_names(&self) -> Vec<String> {
        self.get().nodes.name.clone()
    }

    /// `namespace/name` of every pod, in input order.
    fn pod_names(&self) -> Vec<String> {
        (0..self.get().pods.len() as u32)
            .map(|p| self.get().pod_key(p))
            .collect()
    }

    /// The node each pod is bound to (None when pending).
    fn pod_nodes(&self) -> Vec<Option<String>> {
        let s = &self.get();
        s.current
            .node
            .iter()
            .map(|n| n.map(|n| s.nodes.name[n as usize].clone()))
            .collect()
    }

    /// `metadata.uid` of every pod, in input order (empty where the input had none).
    fn pod_uids(&self) -> Vec<String> {
        self.get().pods.uid.clone()
    }

    fn pod_phases(&self) -> Vec<&'static str> {
        self.get().pods.phase.iter().map(|p| p.as_str()).collect()
    }

    /// Effective requests of one pod (`namespace/name`), in scheduler units (cpu in milli-cores,
    /// everything else in whole units), plus its GPU demand.
    fn pod_request(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<PodRequest> {
        let key: String = extract(key, "key", "a pod name (namespace/name)")?;
        let s = &self.get();
        let p = s
            .pods
            .id(&key)
            .ok_or_else(|| unknown_name(py, "key", cut(&key).into_owned()))?
            as usize;
        let resources = s
            .resources
            .names()
            .iter()
            .zip(s.pods.requests.row(p))
            .filter(|(_, &v)| v != 0)
            .map(|(n, &v)| (n.clone(), v))
            .collect();
        let gpu = s.pods.gpu[p];
        let devices =
            kube_engine_core::model::gpu::mask_indices(s.current.gpu_devices[p]).collect();
        Ok(PodRequest {
            resources,
            gpu_count: gpu.count,
            gpu_milli: gpu.milli,
            gpu_devices: devices,
        })
    }

    /// Allocatable of one node in scheduler units, plus its GPU devices and model.
    fn node_allocatable(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
    ) -> PyResult<NodeAllocatable> {
        let name: String = extract(name, "name", "a node name")?;
        let s = &self.get();
        let n = s
            .nodes
            .id(&name)
            .ok_or_else(|| unknown_name(py, "name", cut(&name).into_owned()))?
            as usize;
        let resources = s
            .resources
            .names()
            .iter()
            .zip(s.nodes.allocatable.row(n))
            .filter(|(_, &v)| v != 0)
            .map(|(n, &v)| (n.clone(), v))
            .collect();
        Ok(NodeAllocatable {
            resources,
            gpu_devices: s.nodes.gpu_devices[n],
            gpu_model: s.nodes.gpu_model[n].map(|m| s.symbols.resolve(m).to_string()),
        })
    }

    /// Labels of one node.
    fn node_labels(
        &self,
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
    ) -> PyResult<std::collections::BTreeMap<String, String>> {
        let name: String = extract(name, "name", "a node name")?;
        let s = &self.get();
        let n = s
            .nodes
            .id(&name)
            .ok_or_else(|| unknown_name(py, "name", cut(&name).into_owned()))?;
        let labels = s.node_labels(n);
        Ok(labels
            .labels
            .iter()
            .map(|&(k, v)| {
                let text = |x| labels.symbols.resolve(x).to_string();
                (text(k), text(v))
            })
            .collect())
    }

    /// Pods whose GPU devices were assigned by the loader (no `kube-engine.io/gpu-devices`).
    fn gpu_devices_inferred(&self) -> Vec<String> {
        let s = &self.get();
        (0..s.pods.len() as u32)
            .filter(|&p| s.pods.gpu_devices_inferred[p as usize])
            .map(|p| s.pod_key(p))
            .collect()
    }

    /// Binds the pods of `placement` (computed on this snapshot) here, in memory. Nothing is
    /// written to any cluster.
    fn apply(&self, py: Python<'_>, placement: &Bound<'_, PyAny>) -> PyResult<()> {
        let placement: PyRef<'_, crate::schedule::PyPlacement> =
            extract(placement, "placement", "a Placement")?;
        crate::schedule::apply_placement(py, self, &placement)
    }

    fn __repr__(&self) -> String {
        format!(
            "Snapshot(nodes={}, pods={}, pdbs={})",
            self.get().nodes.len(),
            self.get().pods.len(),
            self.get().pdbs.len()
        )
    }
}

#[derive(IntoPyObject)]
pub struct PodRequest {
    resources: std::collections::BTreeMap<String, i64>,
    gpu_count: u32,
    gpu_milli: u32,
    gpu_devices: Vec<u32>,
}

#[derive(IntoPyObject)]
pub struct NodeAllocatable {
    resources: std::collections::BTreeMap<String, i64>,
    gpu_devices: u32,
    gpu_model: Option<String>,
}

/// Merges list pages into one `List` document (bytes), injecting each item's kind.
#[pyfunction]
pub fn merge_lists<'py>(
    py: Python<'py>,
    pages: Vec<PyBackedBytes>,
) -> PyResult<Bound<'py, PyBytes>> {
    let merged = detached(py, move || {
        let refs: Vec<&[u8]> = pages.iter().map(AsRef::as_ref).collect();
        snapshot::merge_lists(&refs)
    })?
    .or_raise(py)?;
    Ok(PyBytes::new(py, &merged))
}

/// A list page's `(kind, continue token, item count)`; the token is None on the last page.
#[pyfunction]
pub fn list_page(
    py: Python<'_>,
    page: PyBackedBytes,
) -> PyResult<(Option<String>, Option<String>, usize)> {
    let summary = detached(py, move || snapshot::list_page(&page))?.or_raise(py)?;
    Ok((summary.kind, summary.continue_token, summary.items))
}

/// The effective request of a pod spec (JSON bytes of a Pod's `spec`), exactly as the snapshot
/// computes it: `{"resources": {name: amount}, "gpu_count": k, "gpu_milli": m}`.
#[pyfunction]
pub fn effective_request(py: Python<'_>, spec: &[u8]) -> PyResult<EffectiveRequest> {
    let r = snapshot::spec_effective_request(spec).or_raise(py)?;
    Ok(EffectiveRequest {
        resources: r.resources.into_iter().collect(),
        gpu_count: r.gpu.count,
        gpu_milli: r.gpu.milli,
    })
}

#[derive(IntoPyObject)]
pub struct EffectiveRequest {
    resources: std::collections::BTreeMap<String, i64>,
    gpu_count: u32,
    gpu_milli: u32,
}

/// Parses a Kubernetes quantity; returns (milli_value, value) — what kube-scheduler uses for
/// cpu and for every other resource.
#[pyfunction]
pub fn parse_quantity(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<(i64, i64)> {
    let text: String = extract(text, "text", "a quantity (a string such as \"1Gi\")")?;
    let q = Quantity::parse(&text).or_raise(py)?;
    Ok((q.milli_value(), q.value()))
}
