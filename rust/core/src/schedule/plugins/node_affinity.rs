//! NodeAffinity: `nodeSelector` and required node affinity filter; the weights of matching
//! preferred terms score. The profile may add affinity of its own (`NodeAffinityArgs`'
//! `addedAffinity`), which every pod it places must meet as well: its required terms filter
//! first (upstream's "scheduler-enforced" reason), its preferred terms score beside the pod's.

use serde::Deserialize;

use crate::error::ConfigError;
use crate::model::affinity::{NodeAffinity as Affinity, NodeSelectorOperator, NodeSelectorTerm};
use crate::schedule::framework::{
    default_normalize, Cycle, CycleData, FilterPlugin, PreFilter, PreScore, Reason, ScorePlugin,
};
use crate::snapshot::NodeId;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAffinityArgs {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub added_affinity: Option<Affinity>,
}

/// Why a node fails: the profile's added affinity, or the pod's own.
const ENFORCED: u32 = 1;
const POD: u32 = 0;

#[derive(Clone, Debug, Default)]
pub struct NodeAffinity {
    added: Option<Affinity>,
}

impl NodeAffinity {
    /// Upstream validates `addedAffinity` by parsing it: a requirement kube-scheduler cannot turn
    /// into a selector (see `NodeSelectorRequirement::parses`) is a configuration error, where
    /// on a pod it only makes its term match no node.
    pub fn new(args: NodeAffinityArgs) -> Result<Self, ConfigError> {
        if let Some(added) = &args.added_affinity {
            let required = added.required.iter().flat_map(|r| &r.node_selector_terms);
            let preferred = added.preferred.iter().map(|p| &p.preference);
            let unparsable = required
                .chain(preferred)
                .flat_map(|t| &t.match_expressions)
                .find(|r| !r.parses);
            if let Some(r) = unparsable {
                return Err(ConfigError::at(
                    "addedAffinity",
                    format!(
                        "requirement {:?} {:?} {:?} cannot be parsed as a label selector",
                        r.key, r.operator, r.values
                    ),
                ));
            }
        }
        Ok(NodeAffinity {
            added: args.added_affinity,
        })
    }

    fn added_preferred(&self) -> &[crate::model::affinity::PreferredSchedulingTerm] {
        self.added.as_ref().map_or(&[], |a| a.preferred.as_slice())
    }
}

/// The node names a term's `matchFields` `metadata.name In` requirements allow (their
/// intersection: a term's requirements are ANDed); `None` when it has none.
fn named_nodes(t: &NodeSelectorTerm) -> Option<Vec<&String>> {
    let mut names: Option<Vec<&String>> = None;
    for r in t
        .match_fields
        .iter()
        .filter(|r| r.operator == NodeSelectorOperator::In)
    {
        names = Some(match names {
            None => r.values.iter().collect(),
            Some(seen) => seen.into_iter().filter(|n| r.values.contains(n)).collect(),
        });
    }
    names
}

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn is_static(&self) -> bool {
        true
    }

    /// Upstream's PreFilter narrows the nodes to those `matchFields` on `metadata.name` name;
    /// when every term names nodes and none survives the intersection within its term, no node
    /// can match and the pod is rejected before any node is filtered.
    fn pre_filter(&self, cx: &Cycle) -> PreFilter {
        let terms = cx.snap.pods.affinity[cx.p()]
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.required.as_ref())
            .map_or(&[][..], |r| r.node_selector_terms.as_slice());
        let mut any = false;
        for t in terms {
            match named_nodes(t) {
                // A term without node names admits every node: the terms are ORed.
                None => return PreFilter::Run(None),
                Some(names) => any |= !names.is_empty(),
            }
        }
        if terms.is_empty() || any {
            PreFilter::Run(None)
        } else {
            PreFilter::Reject("pod affinity terms conflict".into())
        }
    }

    fn filter(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> Result<(), u32> {
        if let Some(required) = self.added.as_ref().and_then(|a| a.required.as_ref()) {
            let name = &cx.snap.nodes.name[node as usize];
            if !required.matches(name, &cx.snap.node_labels(node)) {
                return Err(ENFORCED);
            }
        }
        if cx.snap.node_affinity_admits(cx.pod, node) {
            Ok(())
        } else {
            Err(POD)
        }
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, code: u32, out: &mut Vec<Reason>) {
        out.push(if code == ENFORCED {
            "node(s) didn't match scheduler-enforced node affinity".into()
        } else {
            "node(s) didn't match Pod's node affinity/selector".into()
        });
    }
}

impl ScorePlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn is_static(&self) -> bool {
        true
    }

    fn pre_score(&self, cx: &Cycle, _: &[NodeId]) -> PreScore {
        let has_preferred = cx.snap.pods.affinity[cx.p()]
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .is_some_and(|na| !na.preferred.is_empty());
        if has_preferred || !self.added_preferred().is_empty() {
            PreScore::Run(None)
        } else {
            PreScore::Skip
        }
    }

    fn score(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> i64 {
        let own = cx.snap.pods.affinity[cx.p()]
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .map_or(&[][..], |na| na.preferred.as_slice());
        let labels = cx.snap.node_labels(node);
        let name = &cx.snap.nodes.name[node as usize];
        self.added_preferred()
            .iter()
            .chain(own)
            .filter(|t| t.preference.matches(name, &labels))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize(&self, _: &Cycle, _: &CycleData, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}
