//! Online replay: `fgd_arrivals()`, `replay()`, `fgd_replay()` and `Replay`.

use std::sync::Arc;

use kube_engine_core::bench::replay::{self as core_replay, Replay};
use kube_engine_core::schedule::framework::TieBreak;
use kube_engine_core::snapshot::Snapshot;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{detached, invalid_argument, unknown_name, OrRaise};
use crate::snapshot::PySnapshot;

/// Where each arriving pod went and the running GPU totals (see `kube_engine_core::bench::replay`).
#[pyclass(name = "Replay", module = "kube_engine", frozen)]
pub struct PyReplay {
    inner: Replay,
    snapshot: Arc<Snapshot>,
}

fn check_load(py: Python<'_>, load: f64) -> PyResult<()> {
    if load.is_finite() && load > 0.0 {
        Ok(())
    } else {
        let message = format!("load must be positive, got {load}");
        Err(invalid_argument(py, "load", message))
    }
}

/// The FGD protocol's arrival order over the snapshot's pending pods (`namespace/name`, repeats
/// allowed): shuffled, then topped up with draws with replacement to `load` × the cluster's GPUs.
#[pyfunction]
#[pyo3(signature = (snapshot, load=1.3, seed=0))]
pub fn fgd_arrivals(
    py: Python<'_>,
    snapshot: &PySnapshot,
    load: f64,
    seed: u64,
) -> PyResult<Vec<String>> {
    let s = snapshot.get();
    let snap = s.clone();
    let ids = detached(py, move || {
        let pods: Vec<u32> = (0..snap.pods.len() as u32)
            .filter(|&p| snap.current.node[p as usize].is_none() && snap.is_active(p))
            .collect();
        core_replay::fgd_arrivals(&snap, &pods, load, seed)
    })?
    .or_raise(py)?;
    Ok(ids.into_iter().map(|p| s.pod_key(p)).collect())
}

/// Places `arrivals` (pods by `namespace/name`, in order; a repeat is another pod like it) one at
/// a time with `policy` as the only score plugin, on the cluster as the snapshot has it. `ties`:
/// "random" (a uniform draw per cycle, as kube-scheduler) or "fixed" (the first node in a random
/// order drawn once from the seed, as the FGD simulator).
#[pyfunction]
#[pyo3(signature = (snapshot, arrivals, policy, seed=0, ties="random"))]
pub fn replay(
    py: Python<'_>,
    snapshot: &PySnapshot,
    arrivals: Vec<String>,
    policy: &str,
    seed: u64,
    ties: &str,
) -> PyResult<PyReplay> {
    let s = snapshot.get();
    let tie_break = match ties {
        "random" => TieBreak::Random,
        "fixed" => TieBreak::Rank(core_replay::node_order(s.nodes.len(), seed)),
        other => {
            let message = format!("ties must be \"random\" or \"fixed\", got {other:?}");
            return Err(invalid_argument(py, "ties", message));
        }
    };
    let ids = arrivals
        .iter()
        .map(|k| {
            s.pods
                .id(k)
                .ok_or_else(|| unknown_name(py, "arrivals", format!("unknown pod {k:?}")))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let profile = core_replay::policy_profile(policy, seed).or_raise(py)?;
    let snap = s.clone();
    let inner = detached(py, move || {
        core_replay::replay(&snap, &ids, &profile, seed, tie_break)
    })?
    .or_raise(py)?;
    Ok(PyReplay { inner, snapshot: s })
}

/// The FGD protocol for every policy × seed, run in parallel: `{(policy, seed): Replay}`.
#[pyfunction]
#[pyo3(signature = (snapshot, policies, seeds, load=1.3))]
pub fn fgd_replay<'py>(
    py: Python<'py>,
    snapshot: &PySnapshot,
    policies: Vec<String>,
    seeds: Vec<u64>,
    load: f64,
) -> PyResult<Bound<'py, PyDict>> {
    check_load(py, load)?;
    let s = snapshot.get();
    let snap = s.clone();
    let (p, sd) = (policies.clone(), seeds.clone());
    let runs = detached(py, move || core_replay::fgd_sweep(&snap, &p, &sd, load))?.or_raise(py)?;
    let keys = policies
        .iter()
        .flat_map(|p| seeds.iter().map(move |&seed| (p.clone(), seed)));
    let out = PyDict::new(py);
    for (key, inner) in keys.zip(runs) {
        let snapshot = s.clone();
        out.set_item(key, Py::new(py, PyReplay { inner, snapshot })?)?;
    }
    Ok(out)
}

#[pymethods]
impl PyReplay {
    /// GPU devices in the cluster.
    #[getter]
    fn gpus(&self) -> u64 {
        self.inner.gpus
    }
    /// Per arrival: GPU milli it asked for.
    #[getter]
    fn gpu_milli(&self) -> Vec<u64> {
        self.inner.gpu_milli.clone()
    }
    /// After each arrival: GPU milli arrived so far.
    #[getter]
    fn arrived_milli(&self) -> Vec<u64> {
        self.inner.arrived_milli.clone()
    }
    /// After each arrival: GPU milli allocated in the cluster.
    #[getter]
    fn allocated_milli(&self) -> Vec<u64> {
        self.inner.allocated_milli.clone()
    }
    /// Per arrival: the node it went to, None when no node could take it.
    #[getter]
    fn nodes(&self) -> Vec<Option<String>> {
        let names = &self.snapshot.nodes.name;
        self.inner
            .node
            .iter()
            .map(|n| n.map(|n| names[n as usize].clone()))
            .collect()
    }
    /// Per arrival: the GPU devices it holds on its node.
    #[getter]
    fn devices(&self) -> Vec<Vec<u32>> {
        self.inner
            .devices
            .iter()
            .map(|&m| kube_engine_core::model::gpu::mask_indices(m).collect())
            .collect()
    }
    /// Arrivals no node could take.
    #[getter]
    fn failed(&self) -> usize {
        self.inner.failed()
    }
    /// GPU allocation (%) at arrived load 0..=max_pct % (None where no arrival is near).
    #[pyo3(signature = (max_pct=130))]
    fn allocation_curve(&self, max_pct: u32) -> Vec<Option<f64>> {
        self.inner.allocation_curve(max_pct)
    }

    fn __len__(&self) -> usize {
        self.inner.node.len()
    }

    fn __repr__(&self) -> String {
        let last = self.inner.allocated_milli.last().copied().unwrap_or(0);
        format!(
            "Replay(arrivals={}, failed={}, allocated={:.2}%)",
            self.inner.node.len(),
            self.inner.failed(),
            last as f64 / (self.inner.gpus.max(1) * 10) as f64
        )
    }
}
