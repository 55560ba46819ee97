//! NodeAffinity: `nodeSelector` and required node affinity filter; the weights of matching
//! preferred terms score.

use crate::schedule::framework::{
    default_normalize, Cycle, CycleData, FilterPlugin, PreScore, Reason, ScorePlugin,
};
use crate::snapshot::NodeId;

pub struct NodeAffinity;

impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }

    fn is_static(&self) -> bool {
        true
    }

    fn filter(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> Result<(), u32> {
        if cx.snap.node_affinity_admits(cx.pod, node) {
            Ok(())
        } else {
            Err(0)
        }
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, _: u32, out: &mut Vec<Reason>) {
        out.push("node(s) didn't match Pod's node affinity/selector".into());
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
        if has_preferred {
            PreScore::Run(None)
        } else {
            PreScore::Skip
        }
    }

    fn score(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> i64 {
        let Some(na) = cx.snap.pods.affinity[cx.p()]
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
        else {
            return 0;
        };
        let labels = cx.snap.node_labels(node);
        let name = &cx.snap.nodes.name[node as usize];
        na.preferred
            .iter()
            .filter(|t| t.preference.matches(name, &labels))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize(&self, _: &Cycle, _: &CycleData, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}
