//! NodePorts: a host port (IP, protocol, port) can be used by one pod per node; `0.0.0.0` clashes
//! with every address.

use crate::model::pod::HostPort;
use crate::schedule::framework::{Cycle, CycleData, FilterPlugin, PreFilter, Reason};
use crate::snapshot::NodeId;

pub struct NodePorts;

fn clash(a: &HostPort, b: &HostPort) -> bool {
    a.port == b.port
        && a.protocol == b.protocol
        && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0")
}

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn pre_filter(&self, cx: &Cycle) -> PreFilter {
        if cx.snap.pods.host_ports[cx.p()].is_empty() {
            PreFilter::Skip
        } else {
            PreFilter::Run(None)
        }
    }

    fn filter(&self, cx: &Cycle, _: &CycleData, node: NodeId) -> Result<(), u32> {
        let wanted = &cx.snap.pods.host_ports[cx.p()];
        let taken = cx.state.pods_on[node as usize]
            .iter()
            .flat_map(|&q| &cx.snap.pods.host_ports[q as usize]);
        for used in taken {
            if wanted.iter().any(|w| clash(w, used)) {
                return Err(0);
            }
        }
        Ok(())
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, _: u32, out: &mut Vec<Reason>) {
        out.push("node(s) didn't have free ports for the requested pod ports".into());
    }
}
