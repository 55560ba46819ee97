//! Bindings of the core's lab (`kube_engine_core::bench`), for `kube_engine.bench`.

pub mod replay;
pub mod vbp;
