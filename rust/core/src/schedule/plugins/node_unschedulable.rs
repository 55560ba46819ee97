//! NodeUnschedulable: cordoned nodes take only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use crate::model::taints::{Taint, TaintEffect};
use crate::schedule::framework::{Cycle, CycleData, FilterPlugin, Reason};
use crate::snapshot::NodeId;

pub struct NodeUnschedulable;

fn unschedulable_taint() -> Taint {
    Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        value: String::new(),
        effect: TaintEffect::NoSchedule,
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }

    fn is_static(&self) -> bool {
        true
    }

    fn filter(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> Result<(), u32> {
        if !cx.snap.nodes.unschedulable[node as usize] {
            return Ok(());
        }
        let taint = unschedulable_taint();
        if cx.snap.pods.tolerations[cx.p()]
            .iter()
            .any(|t| t.tolerates(&taint))
        {
            Ok(())
        } else {
            Err(0)
        }
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, _: u32, out: &mut Vec<Reason>) {
        out.push("node(s) were unschedulable".into());
    }
}
