//! One cycle laid open: for a pending pod, every node's filter verdict (the first filter in
//! profile order that rejects it, with its reasons, as kube-scheduler's Filter status) and every
//! score plugin's normalised score per feasible node — what the cycle computes, kept instead of
//! reduced to a choice. For tests against upstream's plugin tables, and for users asking why.

use super::diagnosis::first_failure;
use super::schedule_one::add_plugin_scores;
use super::statics::statics_of;
use super::{Cycle, Reason, Scheduler};
use crate::snapshot::NodeId;

/// A node a filter rejected: the plugin and its reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub plugin: &'static str,
    pub reasons: Vec<String>,
}

/// Everything one cycle found for one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// A PreFilter's rejection (plugin, message): no node was filtered then, nothing scored.
    pub pre_filter: Option<(&'static str, String)>,
    /// Per node (by id): `None` when every filter passes it.
    pub filters: Vec<Option<Rejection>>,
    /// The nodes every filter passes, in node id order.
    pub feasible: Vec<NodeId>,
    /// Per score plugin in profile order: name, weight, and the normalised score of each feasible
    /// node (`None`: the plugin's PreScore skips the pod, so it adds nothing).
    pub scores: Vec<(&'static str, i64, Option<Vec<i64>>)>,
    /// Per feasible node, the weighted sum selectHost compares.
    pub totals: Vec<i64>,
}

impl Scheduler<'_> {
    /// The cycle of `cx.pod` (in group `group`, see [`Scheduler::place`]) with every node
    /// filtered and every feasible node scored, as `place` does with `percentageOfNodesToScore`
    /// 100; nothing is chosen and nothing is kept for the next cycle but the caches `place` keeps.
    pub fn explain(&mut self, cx: &Cycle, group: u32) -> Explanation {
        let n_nodes = cx.snap.nodes.len();
        let profile = self.profile;
        let filter_data = match self.pre_filters(cx) {
            Ok((_, data)) => data,
            Err(e) => {
                let msg = e.pre_filter.expect("a PreFilter rejection has a message");
                return Explanation {
                    pre_filter: Some((e.plugins[&msg], msg)),
                    filters: vec![None; n_nodes],
                    feasible: Vec::new(),
                    scores: Vec::new(),
                    totals: Vec::new(),
                };
            }
        };
        let threads = self.threads;
        let statics = statics_of(&mut self.statics, profile, cx, group, threads);
        let mut reasons: Vec<Reason> = Vec::new();
        let filters: Vec<Option<Rejection>> = (0..n_nodes as NodeId)
            .map(|node| {
                let (i, code) = first_failure(profile, cx, &statics.filters, &filter_data, node)?;
                let data = filter_data[i].as_ref().expect("a plugin that rejected ran");
                profile.filters[i].reasons(cx, data, node, code, &mut reasons);
                Some(Rejection {
                    plugin: profile.filters[i].name(),
                    reasons: reasons.drain(..).map(|r| r.into_owned()).collect(),
                })
            })
            .collect();
        let feasible: Vec<NodeId> = (0..n_nodes as NodeId)
            .filter(|&n| filters[n as usize].is_none())
            .collect();
        let mut totals = vec![0; feasible.len()];
        let mut buf = Vec::new();
        let scores = profile
            .scores
            .iter()
            .map(|(plugin, weight)| {
                // Weight 1 into zeros gives the plugin's normalised scores, by the very call
                // that adds them into a cycle's totals.
                let mut own = vec![0; feasible.len()];
                let ran = add_plugin_scores(plugin.as_ref(), cx, &feasible, 1, &mut own, &mut buf);
                for (t, s) in totals.iter_mut().zip(&own) {
                    *t += weight * s;
                }
                (plugin.name(), *weight, ran.then_some(own))
            })
            .collect();
        Explanation {
            pre_filter: None,
            filters,
            feasible,
            scores,
            totals,
        }
    }
}
