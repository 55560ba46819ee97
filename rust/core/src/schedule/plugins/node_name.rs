//! NodeName: a pod whose `spec.nodeName` names a node runs there and nowhere else. Pending pods have
//! none; a bound pod offered for placement again is pinned to its node, as Kubernetes pins it.

use crate::schedule::framework::{Cycle, CycleData, FilterPlugin, PreFilter, Reason};
use crate::snapshot::NodeId;

pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn pre_filter(&self, cx: &Cycle) -> PreFilter {
        match cx.snap.current.node[cx.p()] {
            Some(_) => PreFilter::Run(None),
            None => PreFilter::Skip,
        }
    }

    fn filter(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> Result<(), u32> {
        if cx.snap.current.node[cx.p()] == Some(node) {
            Ok(())
        } else {
            Err(0)
        }
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, _: u32, out: &mut Vec<Reason>) {
        out.push("node(s) didn't match the requested node name".into());
    }
}
