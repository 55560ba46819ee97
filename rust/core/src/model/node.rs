//! Nodes as the scheduler sees them.

use serde::Deserialize;

use super::meta::{non_negative_quantities_or_null, null_default, KeyValues, ObjectMeta};
use super::taints::Taint;
use crate::quantity::Quantity;

#[derive(Clone, Debug, Deserialize)]
pub struct Node {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: NodeSpec,
    #[serde(default, deserialize_with = "null_default")]
    pub status: NodeStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NodeSpec {
    #[serde(default, deserialize_with = "null_default")]
    pub taints: Vec<Taint>,
    #[serde(default)]
    pub unschedulable: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NodeStatus {
    #[serde(default, deserialize_with = "non_negative_quantities_or_null")]
    pub allocatable: Option<KeyValues<Quantity>>,
    #[serde(default, deserialize_with = "non_negative_quantities_or_null")]
    pub capacity: Option<KeyValues<Quantity>>,
    #[serde(default, deserialize_with = "null_default")]
    pub conditions: Vec<NodeCondition>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

impl Node {
    /// What pods may request: `status.allocatable`, or `status.capacity` when a node reports no
    /// allocatable (the kubelet then reserves nothing). A node that reports neither offers nothing.
    pub fn allocatable(&self) -> (&'static str, Option<&KeyValues<Quantity>>) {
        match (&self.status.allocatable, &self.status.capacity) {
            (Some(a), _) => ("status.allocatable", Some(a)),
            (None, Some(c)) => ("status.capacity", Some(c)),
            (None, None) => ("status.allocatable", None),
        }
    }

    /// The Ready condition is True. Nodes that report no conditions at all (hand-written snapshots)
    /// count as ready: kube-scheduler itself filters on the not-ready taint, not on the condition.
    pub fn ready(&self) -> bool {
        match self.status.conditions.iter().find(|c| c.kind == "Ready") {
            Some(c) => c.status == "True",
            None => self.status.conditions.is_empty(),
        }
    }
}
