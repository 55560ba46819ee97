//! Vector bin packing: bounds, greedy packings and the feasibility check, for the CP-SAT model in
//! `kube_engine.rebalance.vbp`.

use kube_engine_core::bench::vbp::{self, Instance};
use kube_engine_core::error::Error;
use pyo3::prelude::*;

use crate::errors::{detached, invalid_argument, OrRaise};

fn instance(py: Python<'_>, sizes: Vec<Vec<i64>>, capacity: Vec<i64>) -> PyResult<Instance> {
    if let Some((i, row)) = sizes
        .iter()
        .enumerate()
        .find(|(_, row)| row.len() != capacity.len())
    {
        let message = format!(
            "item {i}: {} sizes for {} dimensions",
            row.len(),
            capacity.len()
        );
        return Err(invalid_argument(py, "sizes", message));
    }
    Instance::new(sizes.concat(), capacity).or_raise(py)
}

/// `(L1, L2)`: the covering bound and Martello–Toth L2, each the max over dimensions.
#[pyfunction]
pub fn vbp_lower_bounds(
    py: Python<'_>,
    sizes: Vec<Vec<i64>>,
    capacity: Vec<i64>,
) -> PyResult<(u64, u64)> {
    let inst = instance(py, sizes, capacity)?;
    let lb = detached(py, move || vbp::lower_bounds(&inst))?;
    Ok((lb.l1, lb.l2))
}

/// `(bin per item, heuristic name)`: the best greedy packing.
#[pyfunction]
pub fn vbp_heuristic(
    py: Python<'_>,
    sizes: Vec<Vec<i64>>,
    capacity: Vec<i64>,
) -> PyResult<(Vec<u32>, String)> {
    let inst = instance(py, sizes, capacity)?;
    let p = detached(py, move || vbp::best_heuristic(&inst))?;
    Ok((p.bin, p.heuristic))
}

/// `(bin per item, bins)`: `bins` (a packing numbered from 0 with no empty bin) improved by the
/// local search within `budget` work units, stopping at `lower` bins.
#[pyfunction]
pub fn vbp_local_search(
    py: Python<'_>,
    sizes: Vec<Vec<i64>>,
    capacity: Vec<i64>,
    bins: Vec<u32>,
    lower: usize,
    budget: u64,
    seed: u64,
) -> PyResult<(Vec<u32>, usize)> {
    let inst = instance(py, sizes, capacity)?;
    let p = detached(py, move || {
        let start = vbp::Packing::from_bins(&inst, bins)?;
        Ok::<_, Error>(vbp::local_search::local_search(
            &inst, &start, lower, budget, seed,
        ))
    })?
    .or_raise(py)?;
    Ok((p.bin, p.bins))
}

/// Bins used by `bins` (bin index per item); `ValueError` naming the item or bin if it is not a
/// feasible packing.
#[pyfunction]
pub fn vbp_check(
    py: Python<'_>,
    sizes: Vec<Vec<i64>>,
    capacity: Vec<i64>,
    bins: Vec<i64>,
) -> PyResult<usize> {
    let inst = instance(py, sizes, capacity)?;
    detached(py, move || vbp::check(&inst, &bins))?.or_raise(py)
}
