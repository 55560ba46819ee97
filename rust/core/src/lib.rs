//! kube-engine's core: Kubernetes' scheduling model and cluster snapshots, in pure Rust.
//!
//! Nothing here knows about Python; the pyo3 crate in `rust/python` converts and delegates.
//! Data flows one way: JSON bytes → [`snapshot::Snapshot`] (columnar) → [`metrics`].

// Columns are parallel vectors indexed by node or pod id; index loops read clearer than zips.
#![allow(clippy::needless_range_loop)]

pub mod bench;
pub mod error;
pub(crate) mod hash;
pub mod intern;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod quantity;
pub mod rebalance;
pub mod resources;
pub mod schedule;
pub mod snapshot;

pub use error::{ArgumentError, ConfigError, Error, InputError};
pub use quantity::Quantity;
pub use snapshot::Snapshot;
