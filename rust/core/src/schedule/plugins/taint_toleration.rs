//! TaintToleration: untolerated NoSchedule/NoExecute taints filter a node out; untolerated
//! PreferNoSchedule taints count against it (fewer is better).

use crate::model::taints::TaintEffect;
use crate::schedule::framework::{
    default_normalize, Cycle, CycleData, FilterPlugin, Reason, ScorePlugin,
};
use crate::snapshot::NodeId;

pub struct TaintToleration;

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn is_static(&self) -> bool {
        true
    }

    fn filter(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> Result<(), u32> {
        let taints = &cx.snap.nodes.taints[node as usize];
        if taints.is_empty() {
            return Ok(());
        }
        match cx.snap.untolerated_taint(cx.pod, node) {
            None => Ok(()),
            Some(t) => Err(taints
                .iter()
                .position(|x| x == t)
                .expect("a taint of the node") as u32),
        }
    }

    fn reasons(&self, cx: &Cycle, _: &CycleData, node: NodeId, code: u32, out: &mut Vec<Reason>) {
        let t = &cx.snap.nodes.taints[node as usize][code as usize];
        out.push(format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value).into());
    }
}

impl ScorePlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn is_static(&self) -> bool {
        true
    }

    fn score(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> i64 {
        // Only tolerations that can apply to PreferNoSchedule count (no effect, or that effect).
        let tolerations = &cx.snap.pods.tolerations[cx.p()];
        cx.snap.nodes.taints[node as usize]
            .iter()
            .filter(|t| t.effect == TaintEffect::PreferNoSchedule)
            .filter(|t| {
                !tolerations.iter().any(|tol| {
                    tol.effect
                        .is_none_or(|e| e == TaintEffect::PreferNoSchedule)
                        && tol.tolerates(t)
                })
            })
            .count() as i64
    }

    fn normalize(&self, _: &Cycle, _: &CycleData, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}
