//! Persistent volumes as the scheduler's volume filters see them: which nodes a pod's claims can
//! reach (VolumeBinding: a bound volume's node affinity, an unbound claim's storage class
//! topology; VolumeZone: a bound volume's zone and region labels).

use serde::Deserialize;

use super::affinity::NodeSelector;
use super::meta::{null_default, ObjectMeta};
use super::selector::LabelSet;

/// The zone and region labels VolumeZone compares, the beta ones included.
pub const TOPOLOGY_LABELS: [&str; 4] = [
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
];

#[derive(Clone, Debug, Deserialize)]
pub struct PersistentVolumeClaim {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: ClaimSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    /// The volume it is bound to, if any.
    #[serde(default)]
    pub volume_name: Option<String>,
    #[serde(default)]
    pub storage_class_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PersistentVolume {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: VolumeSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    #[serde(default)]
    pub node_affinity: Option<VolumeNodeAffinity>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct VolumeNodeAffinity {
    #[serde(default)]
    pub required: Option<NodeSelector>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageClass {
    pub metadata: ObjectMeta,
    /// `Immediate` (the default) or `WaitForFirstConsumer`.
    #[serde(default)]
    pub volume_binding_mode: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub allowed_topologies: Vec<TopologySelectorTerm>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopologySelectorTerm {
    #[serde(default, deserialize_with = "null_default")]
    pub match_label_expressions: Vec<TopologyRequirement>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TopologyRequirement {
    pub key: String,
    #[serde(default, deserialize_with = "null_default")]
    pub values: Vec<String>,
}

/// Where a pod's claims let it run, worked out once per pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// Every one must admit the node (bound volumes' node affinity).
    pub selectors: Vec<NodeSelector>,
    /// Per topology label, the values a bound volume allows (VolumeZone).
    pub zones: Vec<(String, Vec<String>)>,
    /// Every one must have a term the node's labels satisfy (unbound claims' classes).
    pub topologies: Vec<Vec<TopologySelectorTerm>>,
}

impl PartialEq for TopologySelectorTerm {
    fn eq(&self, other: &Self) -> bool {
        self.match_label_expressions.len() == other.match_label_expressions.len()
            && self
                .match_label_expressions
                .iter()
                .zip(&other.match_label_expressions)
                .all(|(a, b)| a.key == b.key && a.values == b.values)
    }
}

impl Eq for TopologySelectorTerm {}

/// Why a node cannot reach a pod's volumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// A bound volume's node affinity excludes the node.
    NodeAffinity,
    /// A bound volume's zone (or region) is not the node's.
    Zone,
    /// An unbound claim's storage class does not offer the node's topology.
    Topology,
}

impl Unreachable {
    /// kube-scheduler's words.
    pub fn reason(self) -> &'static str {
        match self {
            Unreachable::NodeAffinity => "node(s) had volume node affinity conflict",
            Unreachable::Zone => "node(s) had no available volume zone",
            Unreachable::Topology => "node(s) didn't find available persistent volumes to bind",
        }
    }
}

impl Reach {
    pub fn is_empty(&self) -> bool {
        self.selectors.is_empty() && self.zones.is_empty() && self.topologies.is_empty()
    }

    /// Whether the node (its name and labels) reaches every volume.
    pub fn admits(&self, node: &str, labels: &impl LabelSet) -> Result<(), Unreachable> {
        if !self.selectors.iter().all(|s| s.matches(node, labels)) {
            return Err(Unreachable::NodeAffinity);
        }
        for (key, values) in &self.zones {
            // A node without the label is not held to it (upstream's VolumeZone).
            if let Some(v) = labels.label(key) {
                if !values.iter().any(|z| z == v) {
                    return Err(Unreachable::Zone);
                }
            }
        }
        let term_holds = |t: &TopologySelectorTerm| {
            t.match_label_expressions.iter().all(|r| {
                labels
                    .label(&r.key)
                    .is_some_and(|v| r.values.iter().any(|x| x == v))
            })
        };
        if !self
            .topologies
            .iter()
            .all(|terms| terms.is_empty() || terms.iter().any(term_holds))
        {
            return Err(Unreachable::Topology);
        }
        Ok(())
    }
}

/// A PV's zone label value, split as upstream does for regional disks (`zone-a__zone-b`).
pub fn zone_values(value: &str) -> Vec<String> {
    value.split("__").map(str::to_string).collect()
}
