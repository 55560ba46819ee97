//! Pods numbered by their node constraints (nodeSelector, node affinity and tolerations), once per
//! snapshot: a batch's constraint groups and the pod index's node-constraint numbers are both
//! per-class facts, so each is worked out once per class from its first pod instead of reading
//! every pod's strings again.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use super::{PodId, Pods, Snapshot};
use crate::hash::IdMap;
use crate::model::affinity::{Affinity, NodeAffinity};
use crate::model::taints::Toleration;
use crate::model::Labels;

/// Per pod, its class: pods with equal (`==`) nodeSelector, node affinity and tolerations share
/// one (the snapshot stores equal values once), pods that differ in any never do.
pub(crate) struct ConstraintClasses {
    /// Per pod, its class, numbered from 0 in order of the class's first pod.
    pub(crate) of: Vec<u32>,
    /// Per class, its first pod.
    pub(crate) first: Vec<PodId>,
    /// Per class, the number of its nodeSelector and required node affinity (see
    /// [`Snapshot::node_constraints`]), made on first use.
    node_constraints: OnceLock<Vec<Option<u32>>>,
}

// The snapshot shares equal values (see `super::shared`): the same allocation is the same value,
// and comparing (and hashing) addresses reads no strings. Values equal but not shared would only
// make more classes, each still of equal constraints.
type Key<'a> = (*const Labels, NodeAffinityOf<'a>, *const [Toleration]);

/// A pod's node affinity, compared and hashed as that, through its whole affinity: pods with
/// one shared affinity have the same node affinity without reading it.
#[derive(Clone, Copy)]
pub(crate) struct NodeAffinityOf<'a>(Option<&'a Arc<Affinity>>);

impl NodeAffinityOf<'_> {
    fn get(&self) -> Option<&NodeAffinity> {
        self.0.and_then(|a| a.node_affinity.as_ref())
    }
}

impl PartialEq for NodeAffinityOf<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.0, other.0) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.get() == other.get(),
        }
    }
}

impl Eq for NodeAffinityOf<'_> {}

impl Hash for NodeAffinityOf<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.get().hash(state);
    }
}

impl ConstraintClasses {
    /// What pods of one class have equal.
    pub(crate) fn key(pods: &Pods, p: usize) -> Key<'_> {
        (
            Arc::as_ptr(&pods.node_selector[p]),
            NodeAffinityOf(pods.affinity[p].as_ref()),
            Arc::as_ptr(&pods.tolerations[p]),
        )
    }

    fn compute(pods: &Pods) -> ConstraintClasses {
        let mut ids: IdMap<Key, u32> = IdMap::default();
        let mut of: Vec<u32> = Vec::with_capacity(pods.len());
        let mut first = Vec::new();
        for p in 0..pods.len() {
            let k = ConstraintClasses::key(pods, p);
            // Replicas of a workload are mostly listed together: the pod before is still in cache,
            // and comparing with it is cheaper than hashing every string.
            if p > 0 && ConstraintClasses::key(pods, p - 1) == k {
                of.push(of[p - 1]);
                continue;
            }
            let next = first.len() as u32;
            of.push(*ids.entry(k).or_insert_with(|| {
                first.push(p as PodId);
                next
            }));
        }
        ConstraintClasses {
            of,
            first,
            node_constraints: OnceLock::new(),
        }
    }

    /// How many classes there are.
    pub(crate) fn len(&self) -> usize {
        self.first.len()
    }
}

/// What [`ConstraintClasses`] holds for a snapshot, computed on first use. A clone starts empty:
/// the clone's columns may be changed before it is used.
#[derive(Default)]
pub(crate) struct ClassesCell(OnceLock<ConstraintClasses>);

impl Clone for ClassesCell {
    fn clone(&self) -> Self {
        ClassesCell::default()
    }
}

impl fmt::Debug for ClassesCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.0.get().is_some() {
            "computed"
        } else {
            "not computed"
        };
        write!(f, "ClassesCell({state})")
    }
}

impl Snapshot {
    /// The pods' constraint classes, computed on first use (one pass over every pod).
    pub(crate) fn constraint_classes(&self) -> &ConstraintClasses {
        self.pods
            .constraint_classes
            .0
            .get_or_init(|| ConstraintClasses::compute(&self.pods))
    }

    /// Pod `p`'s number for its nodeSelector and required node affinity: equal sets, equal
    /// numbers (in order of their classes' first pods); `None` if it has neither. What those
    /// admit is a fact per number, not per pod.
    pub(crate) fn node_constraints(&self, p: PodId) -> Option<u32> {
        let classes = self.constraint_classes();
        let numbers = classes.node_constraints.get_or_init(|| {
            let pods = &self.pods;
            let mut ids: IdMap<_, u32> = IdMap::default();
            classes
                .first
                .iter()
                .map(|&p| {
                    let p = p as usize;
                    let required = pods.affinity[p]
                        .as_ref()
                        .and_then(|a| a.node_affinity.as_ref())
                        .and_then(|na| na.required.as_ref());
                    if pods.node_selector[p].is_empty() && required.is_none() {
                        return None;
                    }
                    let next = ids.len() as u32;
                    Some(
                        *ids.entry((&pods.node_selector[p], required))
                            .or_insert(next),
                    )
                })
                .collect()
        });
        numbers[classes.of[p as usize] as usize]
    }

    /// The constraint classes if something computed them already.
    pub(crate) fn constraint_classes_if_computed(&self) -> Option<&ConstraintClasses> {
        self.pods.constraint_classes.0.get()
    }
}

#[cfg(test)]
mod tests {
    fn snapshot(specs: &[&str]) -> crate::Snapshot {
        let names: Vec<String> = (0..specs.len()).map(|i| format!("a/p{i}")).collect();
        let pods: Vec<(&str, &str, &str)> = names
            .iter()
            .zip(specs)
            .map(|(name, spec)| (name.as_str(), "", *spec))
            .collect();
        crate::schedule::pod_index::tests::snapshot(&pods)
    }

    #[test]
    fn equal_constraints_share_a_class_wherever_the_pods_are() {
        let zone_a = r#""nodeSelector":{"zone":"a"},"#;
        let zone_b = r#""nodeSelector":{"zone":"b"},"#;
        let tolerant = r#""nodeSelector":{"zone":"a"},"tolerations":[{"operator":"Exists"}],"#;
        let required = r#""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]}]}}},"#;
        // Pod affinity is not a node constraint.
        let anti = r#""nodeSelector":{"zone":"a"},"affinity":{"podAntiAffinity":{
            "requiredDuringSchedulingIgnoredDuringExecution":[{"topologyKey":"zone",
            "labelSelector":{"matchLabels":{"app":"web"}}}]}},"#;
        let s = snapshot(&[
            "", zone_a, zone_a, zone_b, tolerant, required, zone_a, "", required, anti,
        ]);
        let classes = s.constraint_classes();
        assert_eq!(classes.of, [0, 1, 1, 2, 3, 4, 1, 0, 4, 1]);
        assert_eq!(classes.first, [0, 1, 3, 4, 5]);
        assert_eq!(classes.len(), 5);
        // A clone computes its own.
        assert!(s.constraint_classes_if_computed().is_some());
        assert!(s.clone().constraint_classes_if_computed().is_none());
    }

    #[test]
    fn a_small_batch_gets_the_groups_the_classes_give() {
        let zone = |z: &str| format!(r#""nodeSelector":{{"zone":"{z}"}},"#);
        let tolerant = r#""tolerations":[{"operator":"Exists"}],"#.to_string();
        let mut specs = vec![zone("a"), zone("b"), tolerant.clone(), zone("a"), tolerant];
        specs.extend((0..20).map(|i| zone(&format!("z{i}"))));
        let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
        let s = snapshot(&specs);
        let profiles = [crate::schedule::profile::default_profile()];
        let batch = [4, 3, 1, 0, 2];
        let small = crate::schedule::constraint_groups(&s, &batch, &profiles);
        // Too small a batch to compute the classes for.
        assert!(s.constraint_classes_if_computed().is_none());
        assert_eq!(small, [0, 1, 2, 1, 0]);
        s.constraint_classes();
        assert_eq!(
            crate::schedule::constraint_groups(&s, &batch, &profiles),
            small
        );
    }

    #[test]
    fn node_constraints_ignore_tolerations_and_preferences() {
        let required = r#""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]}]}}},"#;
        let preferring = r#""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution":[{"weight":1,"preference":
            {"matchExpressions":[{"key":"disk","operator":"Exists"}]}}]}},"#;
        let tolerant = r#""tolerations":[{"operator":"Exists"}],"nodeSelector":{"zone":"a"},"#;
        let s = crate::schedule::pod_index::tests::snapshot(&[
            ("a/plain", "", ""),
            ("a/zone", "", r#""nodeSelector":{"zone":"a"},"#),
            ("a/required", "", required),
            ("a/tolerant", "", tolerant),
            ("a/preferring", "", preferring),
            (
                "a/tolerant-only",
                "",
                r#""tolerations":[{"operator":"Exists"}],"#,
            ),
        ]);
        let numbers: Vec<Option<u32>> = (0..6).map(|p| s.node_constraints(p)).collect();
        assert_eq!(numbers, [None, Some(0), Some(1), Some(0), Some(1), None]);
    }
}
