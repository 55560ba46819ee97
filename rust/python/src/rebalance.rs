//! `rebalance_space()`: what a rebalance of the snapshot decides over, held by the core, and as
//! plain data for the Python model builder (`rebalance_problem()`); the heuristics that start the
//! search (`drain_plan()`, `greedy_start()`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_engine_core::error::{quoted, ConfigError as CoreConfigError, Error};
use kube_engine_core::model::pod::LocalVolumes;
use kube_engine_core::rebalance::greedy::{self, Limits, Objective, Term};
use kube_engine_core::rebalance::{self, PinOptions, Problem};
use kube_engine_core::schedule::profile;
use kube_engine_core::snapshot::Snapshot;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::args::extract;
use crate::errors::{detached, invalid_argument, to_py, unknown_name, OrRaise};
use crate::snapshot::PySnapshot;

#[derive(IntoPyObject)]
pub struct PodClass {
    pods: Vec<String>,
    nodes: Vec<String>,
    controller: Option<String>,
    request: BTreeMap<String, i64>,
    gpu_count: u32,
    gpu_milli: u32,
    /// One list per distinct set: thousands of classes share a few sets of thousands of nodes.
    candidates: Py<PyList>,
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
    let names: Vec<String> = extract(
        value,
        "allow_local_storage",
        "a bool or a list of volume kinds",
    )?;
    names.iter().try_fold(LocalVolumes::NONE, |kinds, name| {
        let kind = LocalVolumes::named(name).ok_or_else(|| {
            let known: Vec<&str> = LocalVolumes::NAMES.iter().map(|(n, _)| *n).collect();
            let message = format!(
                "allow_local_storage: unknown volume kind {} (known: {})",
                quoted(name),
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
                unknown_name(
                    py,
                    what,
                    format!("{what}: node {} is not in the snapshot", quoted(name)),
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

/// The rebalance problem of a snapshot, computed once and kept in Rust: the greedy starts work
/// on it where it is, and `problem()` gives it to Python as data.
#[pyclass(name = "RebalanceSpace", module = "kube_engine", frozen)]
pub struct PyRebalanceSpace {
    snap: Arc<Snapshot>,
    problem: Problem,
}

/// `config`: a KubeSchedulerConfiguration as JSON, whose first profile's filters decide where
/// pods may go (default: the default profile).
#[pyfunction]
#[pyo3(signature = (
    snapshot, config=None, allow_local_storage=None, allow_bare=false, keep_nodes=vec![],
    exclude_nodes=vec![], moved_since=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn rebalance_space(
    py: Python<'_>,
    snapshot: &PySnapshot,
    config: Option<String>,
    allow_local_storage: Option<&Bound<'_, PyAny>>,
    allow_bare: bool,
    keep_nodes: Vec<String>,
    exclude_nodes: Vec<String>,
    moved_since: Option<i64>,
) -> PyResult<PyRebalanceSpace> {
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
    let problem = detached(py, move || rebalance::problem(&snap, &profile, &opts))?;
    Ok(PyRebalanceSpace { snap: s, problem })
}

/// `rebalance_space(...).problem()`.
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
    let space = rebalance_space(
        py,
        snapshot,
        config,
        allow_local_storage,
        allow_bare,
        keep_nodes,
        exclude_nodes,
        moved_since,
    )?;
    space.problem(py)
}

#[pymethods]
impl PyRebalanceSpace {
    /// The problem as plain data (`kube_engine.records.RebalanceProblem`).
    fn problem<'s>(&'s self, py: Python<'_>) -> PyResult<RebalanceProblem> {
        let (s, pr) = (&self.snap, &self.problem);
        let mut lists: HashMap<&[u32], Py<PyList>> = HashMap::new();
        let mut shared = |nodes: &'s [u32]| -> PyResult<Py<PyList>> {
            Ok(match lists.get(nodes) {
                Some(list) => list.clone_ref(py),
                None => {
                    let list = PyList::new(py, nodes)?.unbind();
                    lists.insert(nodes, list.clone_ref(py));
                    list
                }
            })
        };
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
                Ok(PodClass {
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
                    candidates: shared(&c.candidates)?,
                    interacts: c.interacts,
                })
            })
            .collect::<PyResult<_>>()?;
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
            gpu_free: pr.gpu_free.clone(),
            pinned: pr
                .pinned
                .iter()
                .map(|&(p, why)| (key(p), why.as_str().to_string()))
                .collect(),
            classes,
            budgets,
            domains: pr
                .inter_pod
                .domains
                .iter()
                .map(|d| d.domain.clone())
                .collect(),
            rules: pr
                .inter_pod
                .rules
                .iter()
                .map(|r| InterPodRule {
                    kind: r.kind.as_str(),
                    domains: r.domains,
                    owners: r.owners.clone(),
                    fixed_owners: r.fixed_owners.clone(),
                    counted: r.counted.clone(),
                    fixed_counted: r.fixed_counted.clone(),
                    counts_itself: r.counts_itself,
                    max_skew: r.max_skew,
                    min_domains: r.min_domains,
                    name: r.name.clone(),
                })
                .collect(),
        })
    }
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
    complete: bool,
}

/// The packing heuristic's plan (see `kube_engine_core::rebalance::drain`).
#[pyfunction]
#[pyo3(signature = (
    snapshot, max_moves=None, allow_local_storage=None, allow_bare=false, seed=0,
    keep_nodes=vec![], exclude_nodes=vec![], moved_since=None, time_limit=None,
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
    time_limit: Option<f64>,
) -> PyResult<DrainPlan> {
    let deadline = deadline(py, time_limit)?;
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
        deadline,
    };
    let plan = detached(py, move || rebalance::drain(&snap, opts))?.or_raise(py)?;
    Ok(DrainPlan {
        moves: plan.moves.iter().map(|m| pod_move(&s, m)).collect(),
        freed: plan
            .freed
            .iter()
            .map(|&n| s.nodes.name[n as usize].clone())
            .collect(),
        complete: plan.complete,
    })
}

/// `time_limit` seconds from now (`None`: no limit).
fn deadline(py: Python<'_>, time_limit: Option<f64>) -> PyResult<Option<Instant>> {
    Ok(match time_limit {
        Some(t) if t.is_nan() || t < 0.0 => {
            return Err(invalid_argument(
                py,
                "time_limit",
                format!("time_limit must be >= 0, got {t}"),
            ))
        }
        // Too far away to reach: no deadline.
        Some(t) => Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| Instant::now().checked_add(d)),
        None => None,
    })
}

#[derive(IntoPyObject)]
pub struct GreedyStart {
    moves: Vec<PodMove>,
    value: f64,
    complete: bool,
}

/// `mapping`'s balanced resources (cpu, memory), a value per node each.
fn per_node<T>(
    py: Python<'_>,
    mut mapping: HashMap<String, Vec<T>>,
    what: &str,
    nodes: usize,
) -> PyResult<[Vec<T>; 2]> {
    let mut column = |r: &str| -> PyResult<Vec<T>> {
        match mapping.remove(r) {
            Some(v) if v.len() == nodes => Ok(v),
            _ => Err(invalid_argument(
                py,
                what,
                format!("{what}[{r:?}] must give a value per node ({nodes})"),
            )),
        }
    };
    Ok([column("cpu")?, column("memory")?])
}

/// The greedy start for `term` (`"balance"` or `"defrag"`, see
/// `kube_engine_core::rebalance::greedy`) from the current placement. The objective: `weights`
/// (its terms in order), each term divided by `scale[term]`, plus `move_cost` per move;
/// `allocatable` and `balanced` per node for cpu and memory (`Allocatable`); `prices` per node
/// (None: every node counts 1). It stops after `time_limit` seconds with the best placement so
/// far (`complete` is then false).
#[pyfunction]
#[pyo3(signature = (
    space, term, *, weights, scale, allocatable, balanced, move_cost=0.0, prices=None,
    max_moves=None, time_limit=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn greedy_start(
    py: Python<'_>,
    space: &PyRebalanceSpace,
    term: &str,
    weights: &Bound<'_, PyDict>,
    scale: HashMap<String, f64>,
    allocatable: HashMap<String, Vec<i64>>,
    balanced: HashMap<String, Vec<i64>>,
    move_cost: f64,
    prices: Option<Vec<f64>>,
    max_moves: Option<usize>,
    time_limit: Option<f64>,
) -> PyResult<GreedyStart> {
    let deadline = deadline(py, time_limit)?;
    let start = match term {
        "balance" => greedy::balance,
        "defrag" => greedy::defrag,
        _ => {
            return Err(invalid_argument(
                py,
                "term",
                format!("term must be \"balance\" or \"defrag\", got {term:?}"),
            ))
        }
    };
    let nodes = space.snap.nodes.len();
    let mut terms = Vec::new();
    for (name, weight) in weights.iter() {
        let name: String = name.extract()?;
        let term = Term::named(&name).ok_or_else(|| {
            invalid_argument(py, "weights", format!("weights: unknown term {name:?}"))
        })?;
        let scale = *scale.get(&name).ok_or_else(|| {
            invalid_argument(py, "scale", format!("scale: no value for {name:?}"))
        })?;
        terms.push((term, weight.extract::<f64>()?, scale));
    }
    if prices.as_ref().is_some_and(|p| p.len() != nodes) {
        return Err(invalid_argument(
            py,
            "prices",
            format!("prices must give a price per node ({nodes})"),
        ));
    }
    let objective = Objective {
        terms,
        move_cost,
        prices,
        allocatable: per_node(py, allocatable, "allocatable", nodes)?,
        balanced: per_node(py, balanced, "balanced", nodes)?,
    };
    let limits = Limits {
        max_moves,
        deadline,
    };
    let found = detached(py, || {
        start(&space.snap, &space.problem, &objective, &limits)
    })?;
    let s = &space.snap;
    Ok(GreedyStart {
        moves: found.moves.iter().map(|m| pod_move(s, m)).collect(),
        value: found.value,
        complete: found.complete,
    })
}

fn pod_move(s: &Snapshot, m: &rebalance::Move) -> PodMove {
    let node = |n: u32| s.nodes.name[n as usize].clone();
    PodMove {
        pod: s.pod_key(m.pod),
        from: node(m.from),
        to: node(m.to),
        gpu_devices: kube_engine_core::model::gpu::mask_indices(m.devices).collect(),
    }
}
