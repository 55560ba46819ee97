//! Python bindings: convert, release the GIL, delegate to `kube_engine_core`. No scheduling logic
//! lives here.

mod args;
mod bench;
mod errors;
mod evaluate;
mod plan;
mod rebalance;
mod schedule;
mod snapshot;

use pyo3::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<snapshot::PySnapshot>()?;
    m.add_class::<evaluate::PyEvaluation>()?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_class::<schedule::PyPlacement>()?;
    m.add_function(wrap_pyfunction!(schedule::schedule, m)?)?;
    m.add_function(wrap_pyfunction!(schedule::explain, m)?)?;
    m.add_class::<rebalance::PyRebalanceSpace>()?;
    m.add_function(wrap_pyfunction!(rebalance::rebalance_space, m)?)?;
    m.add_function(wrap_pyfunction!(rebalance::rebalance_problem, m)?)?;
    m.add_function(wrap_pyfunction!(rebalance::greedy_start, m)?)?;
    m.add_function(wrap_pyfunction!(rebalance::drain_plan, m)?)?;
    m.add_function(wrap_pyfunction!(plan::plan, m)?)?;
    m.add_function(wrap_pyfunction!(plan::covering_budgets, m)?)?;
    m.add_function(wrap_pyfunction!(plan::budget_status, m)?)?;
    m.add_class::<bench::replay::PyReplay>()?;
    m.add_function(wrap_pyfunction!(bench::replay::fgd_arrivals, m)?)?;
    m.add_function(wrap_pyfunction!(bench::replay::replay, m)?)?;
    m.add_function(wrap_pyfunction!(bench::replay::fgd_replay, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::merge_lists, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::list_page, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::parse_quantity, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::effective_request, m)?)?;
    m.add_function(wrap_pyfunction!(bench::vbp::vbp_lower_bounds, m)?)?;
    m.add_function(wrap_pyfunction!(bench::vbp::vbp_heuristic, m)?)?;
    m.add_function(wrap_pyfunction!(bench::vbp::vbp_local_search, m)?)?;
    m.add_function(wrap_pyfunction!(bench::vbp::vbp_check, m)?)?;
    Ok(())
}
