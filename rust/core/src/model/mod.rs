//! Kubernetes objects as kube-engine reads them: the fields scheduling depends on, deserialised
//! straight from API JSON. Validation happens during deserialisation (`try_from`), so every error
//! carries the JSON path of the offending field.

pub mod affinity;
pub mod gpu;
pub mod meta;
pub mod node;
pub mod pdb;
pub mod pod;
pub mod selector;
pub mod spread;
pub mod taints;
pub mod validation;
pub mod volume;

pub use meta::Labels;
