//! The lab: what measures placement rather than doing it. The FGD paper's online replay protocol
//! (pods arriving one at a time on the cluster as the earlier ones left it) and vector bin
//! packing (bounds, greedy packings, local search) against instances with known optima. The
//! product (schedule, rebalance, plan) never uses it; Python's `kube_engine.bench` is its face.

mod arrivals;
pub mod replay;
pub mod vbp;
