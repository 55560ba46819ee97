//! Resource names and dense resource vectors.
//!
//! Every resource has an id; the four standard ones have fixed ids so hot code can index them
//! directly, extended resources (`example.com/foo`, hugepages, ...) get ids in order of first sight.
//! Amounts are integers in Kubernetes' own units: CPU in milli-cores (`Quantity::MilliValue`),
//! everything else in whole units (`Quantity::Value`, bytes for memory and storage), exactly what
//! kube-scheduler compares.
//!
//! GPUs are not in these vectors: `nvidia.com/gpu` and `kube-engine.io/gpu-milli` describe devices and
//! shares of devices and live in [`crate::model::gpu`].

use std::collections::HashMap;

use crate::quantity::Quantity;

pub type ResourceId = usize;

pub const CPU: ResourceId = 0;
pub const MEMORY: ResourceId = 1;
pub const PODS: ResourceId = 2;
pub const EPHEMERAL_STORAGE: ResourceId = 3;

pub const STANDARD: [&str; 4] = ["cpu", "memory", "pods", "ephemeral-storage"];

/// The names behind resource ids.
#[derive(Clone, Debug)]
pub struct ResourceNames {
    names: Vec<String>,
    index: HashMap<String, ResourceId>,
}

impl Default for ResourceNames {
    fn default() -> Self {
        let mut r = ResourceNames {
            names: Vec::new(),
            index: HashMap::new(),
        };
        for name in STANDARD {
            r.id(name);
        }
        r
    }
}

impl ResourceNames {
    /// The id of `name`, assigning a new one on first sight.
    pub fn id(&mut self, name: &str) -> ResourceId {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len();
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }

    pub fn get(&self, name: &str) -> Option<ResourceId> {
        self.index.get(name).copied()
    }

    pub fn name(&self, id: ResourceId) -> &str {
        &self.names[id]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// The integer amount kube-scheduler uses for `quantity` of resource `name`.
pub fn amount(name: &str, quantity: Quantity) -> i64 {
    if name == "cpu" {
        quantity.milli_value()
    } else {
        quantity.value()
    }
}

/// A resource list as parsed, before ids are known: (name, amount) pairs, names unique.
pub type SparseResources = Vec<(String, i64)>;

/// Adds `amount` to `name` in a sparse list.
pub fn sparse_add(list: &mut SparseResources, name: &str, amount: i64) {
    match list.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = v.saturating_add(amount),
        None => list.push((name.to_owned(), amount)),
    }
}

/// Per-resource maximum of two sparse lists, into `into`.
pub fn sparse_max(into: &mut SparseResources, other: &SparseResources) {
    for (name, amount) in other {
        match into.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = (*v).max(*amount),
            None => into.push((name.clone(), *amount)),
        }
    }
}

pub fn sparse_get(list: &SparseResources, name: &str) -> i64 {
    list.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
}

/// A dense row-major matrix of amounts: one row per node or pod, one column per resource id.
#[derive(Clone, Debug, Default)]
pub struct ResourceMatrix {
    width: usize,
    data: Vec<i64>,
}

impl ResourceMatrix {
    pub fn new(width: usize) -> Self {
        ResourceMatrix {
            width,
            data: Vec::new(),
        }
    }

    pub fn with_capacity(width: usize, rows: usize) -> Self {
        ResourceMatrix {
            width,
            data: Vec::with_capacity(width * rows),
        }
    }

    pub fn push_sparse(&mut self, list: &SparseResources, names: &ResourceNames) {
        let start = self.data.len();
        self.data.resize(start + self.width, 0);
        for (name, amount) in list {
            let id = names
                .get(name)
                .expect("resource names registered before densifying");
            self.data[start + id] = *amount;
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn row(&self, i: usize) -> &[i64] {
        &self.data[i * self.width..(i + 1) * self.width]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [i64] {
        &mut self.data[i * self.width..(i + 1) * self.width]
    }

    pub fn get(&self, i: usize, r: ResourceId) -> i64 {
        self.data[i * self.width + r]
    }

    /// An all-zero matrix with the same shape.
    pub fn zeros(width: usize, rows: usize) -> Self {
        ResourceMatrix {
            width,
            data: vec![0; width * rows],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_ids_are_fixed() {
        let mut n = ResourceNames::default();
        assert_eq!(n.id("cpu"), CPU);
        assert_eq!(n.id("memory"), MEMORY);
        assert_eq!(n.id("pods"), PODS);
        assert_eq!(n.id("ephemeral-storage"), EPHEMERAL_STORAGE);
        assert_eq!(n.id("example.com/foo"), 4);
        assert_eq!(n.name(4), "example.com/foo");
    }

    #[test]
    fn cpu_is_milli_everything_else_whole_units() {
        let q = Quantity::parse("1500m").unwrap();
        assert_eq!(amount("cpu", q), 1500);
        assert_eq!(amount("memory", q), 2); // Value() rounds up
        assert_eq!(amount("memory", Quantity::parse("1Gi").unwrap()), 1 << 30);
    }

    #[test]
    fn sparse_max_and_add() {
        let mut a: SparseResources = vec![("cpu".into(), 100)];
        sparse_add(&mut a, "cpu", 50);
        sparse_add(&mut a, "memory", 7);
        let b: SparseResources = vec![("cpu".into(), 500), ("example.com/x".into(), 1)];
        sparse_max(&mut a, &b);
        assert_eq!(sparse_get(&a, "cpu"), 500);
        assert_eq!(sparse_get(&a, "memory"), 7);
        assert_eq!(sparse_get(&a, "example.com/x"), 1);
        assert_eq!(sparse_get(&a, "pods"), 0);
    }

    #[test]
    fn matrix_rows() {
        let mut names = ResourceNames::default();
        names.id("example.com/x");
        let mut m = ResourceMatrix::new(names.len());
        m.push_sparse(
            &vec![("memory".into(), 9), ("example.com/x".into(), 2)],
            &names,
        );
        m.push_sparse(&vec![], &names);
        assert_eq!(m.rows(), 2);
        assert_eq!(m.row(0), &[0, 9, 0, 0, 2]);
        assert_eq!(m.get(1, MEMORY), 0);
    }
}
