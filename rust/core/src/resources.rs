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

/// The amount of `name` in a sparse list (0 when absent).
pub fn sparse_get(list: &SparseResources, name: &str) -> i64 {
    list.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
}

/// A sparse resource list being summed. A pod may list any number of extended resources, so
/// each addition finds its resource by a hash index once the list is long, keeping a pod's
/// requests linear in its size; short lists, by far the most common, are scanned.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    list: SparseResources,
    index: Option<HashMap<String, usize>>,
}

impl Tally {
    const SCAN: usize = 16;

    fn slot(&mut self, name: &str) -> &mut i64 {
        let found = match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.list.iter().position(|(n, _)| n == name),
        };
        let i = found.unwrap_or_else(|| {
            self.list.push((name.to_owned(), 0));
            let i = self.list.len() - 1;
            match &mut self.index {
                Some(index) => {
                    index.insert(name.to_owned(), i);
                }
                None if self.list.len() > Self::SCAN => {
                    let index = self.list.iter().enumerate();
                    self.index = Some(index.map(|(i, (n, _))| (n.clone(), i)).collect());
                }
                None => {}
            }
            i
        });
        &mut self.list[i].1
    }

    /// Adds `amount` to `name` (saturating).
    pub fn add(&mut self, name: &str, amount: i64) {
        let v = self.slot(name);
        *v = v.saturating_add(amount);
    }

    /// Raises `name` to at least `amount`.
    pub fn raise(&mut self, name: &str, amount: i64) {
        let v = self.slot(name);
        *v = (*v).max(amount);
    }

    pub fn get(&self, name: &str) -> i64 {
        match &self.index {
            Some(index) => index.get(name).map_or(0, |&i| self.list[i].1),
            None => sparse_get(&self.list, name),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, i64)> {
        self.list.iter()
    }

    /// The sums, in the order the resources were first added.
    pub fn into_list(self) -> SparseResources {
        self.list
    }
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
    fn tally_adds_and_raises() {
        let mut a = Tally::default();
        a.add("cpu", 100);
        a.add("cpu", 50);
        a.add("memory", 7);
        a.raise("cpu", 500);
        a.raise("memory", 3);
        a.raise("example.com/x", 1);
        assert_eq!(a.get("cpu"), 500);
        assert_eq!(a.get("memory"), 7);
        assert_eq!(a.get("example.com/x"), 1);
        assert_eq!(a.get("pods"), 0);
        a.add("cpu", i64::MAX);
        assert_eq!(a.get("cpu"), i64::MAX);
    }

    #[test]
    fn a_long_tally_keeps_first_sight_order() {
        let mut t = Tally::default();
        for round in 0..3 {
            for i in 0..1000 {
                t.add(&format!("example.com/r{i}"), round + 1);
            }
        }
        let list = t.into_list();
        assert_eq!(list.len(), 1000);
        assert_eq!(list[0], ("example.com/r0".to_string(), 6));
        assert_eq!(list[999], ("example.com/r999".to_string(), 6));
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
