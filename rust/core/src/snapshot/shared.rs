//! Equal constraint values stored once per snapshot. Replicas of a workload carry equal
//! nodeSelectors, affinity, tolerations and spread constraints, and scheduling compares pods'
//! constraints again and again (to group pods, to reuse what it derived for a replica): std's
//! `Arc<T: Eq>` is equal to itself by its pointer, without reading the value.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;

use crate::hash::IdSet;
use crate::model::affinity::Affinity;
use crate::model::spread::TopologySpreadConstraint;
use crate::model::taints::Toleration;
use crate::model::Labels;

/// The pods' constraint columns' distinct values, while a snapshot is built.
#[derive(Default)]
pub(crate) struct SharedConstraints {
    pub node_selector: Distinct<Labels>,
    pub affinity: Distinct<Affinity>,
    pub tolerations: Distinct<[Toleration]>,
    pub spread: Distinct<[TopologySpreadConstraint]>,
}

/// The distinct values seen so far, and the one shared last.
pub(crate) struct Distinct<T: ?Sized> {
    kept: IdSet<Arc<T>>,
    last: Option<Arc<T>>,
}

impl<T: ?Sized> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            kept: IdSet::default(),
            last: None,
        }
    }
}

impl<T: ?Sized + Eq + Hash> Distinct<T> {
    /// The kept value equal to `value`, or `value` itself, kept from now on. `value` may be an
    /// `Arc` another `Distinct` shared.
    pub(crate) fn share<V: Borrow<T> + Into<Arc<T>>>(&mut self, value: V) -> Arc<T> {
        // Replicas are mostly listed together: comparing with the value before (by address
        // first, for an `Arc` shared already) is cheaper than hashing this one.
        let kept = match &self.last {
            Some(last) if std::ptr::eq(&**last, value.borrow()) || **last == *value.borrow() => {
                last.clone()
            }
            _ => match self.kept.get(value.borrow()) {
                Some(kept) => kept.clone(),
                None => {
                    let value = value.into();
                    self.kept.insert(value.clone());
                    value
                }
            },
        };
        self.last = Some(kept.clone());
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_allocation() {
        let mut lists: Distinct<[String]> = Distinct::default();
        let a = lists.share(vec!["x".to_string(), "y".to_string()]);
        let b = lists.share(vec!["x".to_string(), "y".to_string()]);
        let c = lists.share(vec!["x".to_string()]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, ["x".to_string()]);
        // Values shared by another (a parsing thread's) are shared again.
        let mut merged: Distinct<[String]> = Distinct::default();
        let mut other: Distinct<[String]> = Distinct::default();
        let d = other.share(vec!["x".to_string(), "y".to_string()]);
        assert!(Arc::ptr_eq(&merged.share(a.clone()), &a));
        assert!(Arc::ptr_eq(&merged.share(c.clone()), &c));
        assert!(Arc::ptr_eq(&merged.share(d), &a));
        let mut boxes: Distinct<u32> = Distinct::default();
        assert!(Arc::ptr_eq(&boxes.share(Box::new(7)), &boxes.share(7)));
    }
}
