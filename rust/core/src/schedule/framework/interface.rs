//! The plugin interfaces: the extension points a filter and a score plugin implement, the
//! profile that lists them, and upstream's score normalisation helpers.

use super::{Cycle, CycleData, Divider};
use crate::snapshot::NodeId;

/// Highest score a plugin gives a node (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// One reason a filter gives for rejecting a node (`Insufficient cpu`); most are fixed texts.
pub type Reason = std::borrow::Cow<'static, str>;

/// Outcome of PreFilter.
#[derive(Clone)]
pub enum PreFilter {
    /// Run the filter, with this plugin's cycle data.
    Run(CycleData),
    /// The plugin has nothing to check for this pod.
    Skip,
    /// No node can take the pod; the message says why.
    Reject(String),
}

pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// The result depends only on the pod's node constraints (nodeSelector, node affinity,
    /// tolerations) and the node's fixed attributes (labels, taints, cordon): the framework then
    /// evaluates it once per group of pods sharing those constraints, not once per pod. A static
    /// plugin's `filter` is called with no cycle data, and its `pre_filter` matters only when it
    /// rejects the pod.
    fn is_static(&self) -> bool {
        false
    }

    /// The verdict at a node depends only on the pod's resource demand (effective requests,
    /// scoring requests, GPU demand) and on what the node has given out so far: the framework keeps
    /// it per node for pods with the same demand and recomputes it only on nodes bound to since.
    /// `pre_filter` must then depend on the demand alone, and a node rejected must stay rejected
    /// when more pods are bound to it (as a node with less room left fits no more).
    fn node_local(&self) -> bool {
        false
    }

    fn pre_filter(&self, _cx: &Cycle) -> PreFilter {
        PreFilter::Run(None)
    }

    /// `Err(code)` rejects the node; `code` is the plugin's own, turned into text by `reasons`.
    fn filter(&self, cx: &Cycle, data: &CycleData, node: NodeId) -> Result<(), u32>;

    /// Clears `fits[i]` where `nodes[i]` is rejected (plugins override this for speed: node-local
    /// ones are run over every node that changed since their demand's last cycle).
    fn filter_all(&self, cx: &Cycle, data: &CycleData, nodes: &[NodeId], fits: &mut [bool]) {
        for (ok, &n) in fits.iter_mut().zip(nodes) {
            *ok = *ok && self.filter(cx, data, n).is_ok();
        }
    }

    /// The kube-scheduler-style reasons why `node` was rejected with `code` in this cycle (e.g.
    /// `Insufficient cpu`).
    fn reasons(&self, cx: &Cycle, data: &CycleData, node: NodeId, code: u32, out: &mut Vec<Reason>);

    /// Whether, with this cycle's data, `reasons` depends on `code` alone and not on the node:
    /// a FitError then counts codes over the nodes and asks for reasons once per code.
    fn reasons_by_code(&self, _data: &CycleData) -> bool {
        false
    }
}

/// Outcome of PreScore.
pub enum PreScore {
    Run(CycleData),
    /// The plugin does not score this pod (all nodes get 0 from it).
    Skip,
}

pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// As for filters: the raw score depends only on the pod's node constraints and the node's fixed
    /// attributes, so it is computed once per group of pods (normalisation still runs per cycle).
    fn is_static(&self) -> bool {
        false
    }

    /// As for filters: the score depends only on the pod's resource demand and what the node has
    /// given out, and NormalizeScore leaves it as it is, so the framework keeps the weighted score
    /// per node for pods with the same demand. `pre_score` must then depend on the demand alone
    /// (it is called without nodes).
    fn node_local(&self) -> bool {
        false
    }

    fn pre_score(&self, _cx: &Cycle, _nodes: &[NodeId]) -> PreScore {
        PreScore::Run(None)
    }

    /// A score for one feasible node.
    fn score(&self, cx: &Cycle, data: &CycleData, node: NodeId) -> i64;

    /// Scores for all feasible nodes at once (plugins override this for speed).
    fn score_all(&self, cx: &Cycle, data: &CycleData, nodes: &[NodeId], out: &mut [i64]) {
        for (o, &n) in out.iter_mut().zip(nodes) {
            *o = self.score(cx, data, n);
        }
    }

    /// Rescales the scores of all feasible nodes into [0, MAX_NODE_SCORE] (NormalizeScore).
    fn normalize(&self, _cx: &Cycle, _data: &CycleData, _scores: &mut [i64]) {}

    /// Adds `weight ×` the normalised score of each of `nodes` (the feasible nodes `pre_score`
    /// was given) to `totals`: [`add_weighted_scores`], through `buf`. Plugins whose scores take
    /// few distinct values override it to normalise each value once.
    #[allow(clippy::too_many_arguments)]
    fn add_weighted(
        &self,
        cx: &Cycle,
        data: &CycleData,
        nodes: &[NodeId],
        weight: i64,
        totals: &mut [i64],
        buf: &mut Vec<i64>,
    ) {
        add_weighted_scores(self, cx, data, nodes, weight, totals, buf);
    }

    /// Which GPU devices of the chosen node the pod gets (Reserve), for policies that care (FGD
    /// picks the device that fragments least). `None`: the default, best fit.
    fn choose_devices(&self, _cx: &Cycle, _node: NodeId) -> Option<crate::model::gpu::DeviceMask> {
        None
    }
}

/// `score_all`, `normalize`, then `totals[i] += weight × score[i]` (scores in `buf`).
#[allow(clippy::too_many_arguments)]
pub fn add_weighted_scores<P: ScorePlugin + ?Sized>(
    plugin: &P,
    cx: &Cycle,
    data: &CycleData,
    nodes: &[NodeId],
    weight: i64,
    totals: &mut [i64],
    buf: &mut Vec<i64>,
) {
    buf.clear();
    buf.resize(nodes.len(), 0);
    plugin.score_all(cx, data, nodes, buf);
    plugin.normalize(cx, data, buf);
    for (t, s) in totals.iter_mut().zip(buf.iter()) {
        *t += s * weight;
    }
}

/// `helper.DefaultNormalizeScore`: scale so the highest becomes `MAX_NODE_SCORE` (reversed:
/// the highest becomes 0). All-zero scores stay 0 (or all become 100 when reversed).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    let max = Divider::new(max);
    for s in scores.iter_mut() {
        *s = max.div(MAX_NODE_SCORE * *s);
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

/// A scheduling profile: filter plugins in order, score plugins with weights.
pub struct Profile {
    pub name: String,
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub scores: Vec<(Box<dyn ScorePlugin>, i64)>,
    /// kube-scheduler's `percentageOfNodesToScore`: `None` is its adaptive default, 100 scores
    /// every feasible node.
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl Profile {
    /// Whether some plugin's results depend only on the pod's node constraints.
    pub fn has_statics(&self) -> bool {
        self.filters.iter().any(|f| f.is_static()) || self.scores.iter().any(|(s, _)| s.is_static())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize() {
        let mut s = [0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 100]);
    }
}
