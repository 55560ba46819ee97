//! VolumeBinding and VolumeZone: a pod goes only where its PersistentVolumes can be reached — a
//! bound volume's node affinity (a local volume's node, a zonal disk's zone) and an unbound
//! claim's storage class topology (VolumeBinding), a bound volume's zone and region labels
//! (VolumeZone). Pods without claims, and inputs that describe no claims, are not checked.

use std::sync::Arc;

use crate::model::volume::{Reach, Unreachable};
use crate::schedule::framework::{Cycle, CycleData, FilterPlugin, PreFilter, Reason};
use crate::snapshot::NodeId;

/// Which of the two upstream plugins: they share the reach, each checks its part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Binding,
    Zone,
}

pub struct Volumes(pub Part);

const CODES: [Unreachable; 3] = [
    Unreachable::NodeAffinity,
    Unreachable::Zone,
    Unreachable::Topology,
];

impl FilterPlugin for Volumes {
    fn name(&self) -> &'static str {
        match self.0 {
            Part::Binding => "VolumeBinding",
            Part::Zone => "VolumeZone",
        }
    }

    fn pre_filter(&self, cx: &Cycle) -> PreFilter {
        match cx.snap.volume_reach(cx.pod) {
            // VolumeZone has nothing to say about missing claims: VolumeBinding says it.
            Err(message) if self.0 == Part::Binding => PreFilter::Reject(message),
            Err(_) => PreFilter::Skip,
            Ok(reach) => {
                let mine = match self.0 {
                    Part::Binding => Reach {
                        zones: Vec::new(),
                        ..reach
                    },
                    Part::Zone => Reach {
                        zones: reach.zones,
                        ..Reach::default()
                    },
                };
                if mine.is_empty() {
                    PreFilter::Skip
                } else {
                    PreFilter::Run(Some(Arc::new(mine)))
                }
            }
        }
    }

    fn filter(&self, cx: &Cycle, data: &CycleData, node: NodeId) -> Result<(), u32> {
        let Some(reach) = data.as_ref().and_then(|d| d.downcast_ref::<Reach>()) else {
            return Ok(());
        };
        reach
            .admits(
                &cx.snap.nodes.name[node as usize],
                &cx.snap.node_labels(node),
            )
            .map_err(|why| CODES.iter().position(|&c| c == why).expect("a known code") as u32)
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, code: u32, out: &mut Vec<Reason>) {
        out.push(CODES[code as usize].reason().into());
    }

    fn reasons_by_code(&self, _: &CycleData) -> bool {
        true
    }
}
