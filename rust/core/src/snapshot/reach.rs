//! Where a pod's PersistentVolumeClaims let it run, from the volumes the input describes.

use super::{PodId, Snapshot};
use crate::model::volume::{zone_values, Reach, TOPOLOGY_LABELS};

impl Snapshot {
    /// Where pod `p`'s claims let it run: bound volumes' node affinity and zone labels, unbound
    /// claims' storage class topologies. Empty when it has no claims, or when the input describes
    /// no claims at all (then nothing is known; see [`crate::rebalance::Pin::UnknownVolumes`]).
    /// `Err` when they let it run nowhere, in kube-scheduler's words: a claim or its volume is
    /// missing, or a claim is unbound and binds immediately.
    pub fn volume_reach(&self, p: PodId) -> Result<Reach, String> {
        let claims = &self.pods.claims[p as usize];
        let mut reach = Reach::default();
        if claims.is_empty() || !self.volumes.described {
            return Ok(reach);
        }
        let ns = self.symbols.resolve(self.pods.namespace[p as usize]);
        for name in claims.iter() {
            let Some((claim, _)) = self.volumes.claims.get(&format!("{ns}/{name}")) else {
                return Err(format!("persistentvolumeclaim \"{name}\" not found"));
            };
            match claim.spec.volume_name.as_deref().filter(|v| !v.is_empty()) {
                Some(volume) => {
                    let Some((pv, _)) = self.volumes.volumes.get(volume) else {
                        return Err("pvc(s) bound to non-existent pv(s)".into());
                    };
                    let affinity = pv.spec.node_affinity.as_ref();
                    if let Some(required) = affinity.and_then(|a| a.required.as_ref()) {
                        reach.selectors.push(required.clone());
                    }
                    for key in TOPOLOGY_LABELS {
                        if let Some(v) = pv.metadata.labels.get(key) {
                            reach.zones.push((key.to_string(), zone_values(v)));
                        }
                    }
                }
                None => {
                    let class = claim.spec.storage_class_name.as_deref().unwrap_or("");
                    let sc = self.volumes.classes.get(class).map(|(c, _)| c);
                    let waits = sc.is_some_and(|c| {
                        c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
                    });
                    if !waits {
                        return Err("pod has unbound immediate PersistentVolumeClaims".into());
                    }
                    reach
                        .topologies
                        .push(sc.map(|c| c.allowed_topologies.clone()).unwrap_or_default());
                }
            }
        }
        Ok(reach)
    }
}
