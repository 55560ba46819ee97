//! The same cluster with a stream of arriving pods, each its own pod: an online replay samples a
//! pod list *with replacement*, and a pod that arrives twice is two pods (two replicas of one
//! template), not one pod placed twice.

use std::collections::HashMap;

use crate::model::pod::PodPhase;
use crate::resources::ResourceMatrix;
use crate::snapshot::{Assignment, PodId, Pods, Snapshot};

impl Snapshot {
    /// This cluster with the pods it has bound, and then one new Pending, unbound pod per entry of
    /// `templates`, in order: a copy of that pod named `<name>-<i>` (`i` its position in
    /// `templates`). The snapshot's unbound pods are dropped: the arrivals stand for them. Nodes
    /// and PodDisruptionBudgets are kept. Returns the new snapshot and the ids of the arrivals.
    pub fn with_arrivals(&self, templates: &[PodId]) -> (Snapshot, Vec<PodId>) {
        let bound: Vec<PodId> = (0..self.pods.len() as PodId)
            .filter(|&p| self.current.node[p as usize].is_some())
            .collect();
        let rows: Vec<(PodId, Option<usize>)> = bound
            .iter()
            .map(|&p| (p, None))
            .chain(templates.iter().enumerate().map(|(i, &p)| (p, Some(i))))
            .collect();
        let pods = self.copy_pod_rows(&rows);
        let mut current = Assignment {
            node: Vec::with_capacity(rows.len()),
            gpu_devices: Vec::with_capacity(rows.len()),
        };
        for &(p, arrival) in &rows {
            let keep = arrival.is_none();
            current
                .node
                .push(self.current.node[p as usize].filter(|_| keep));
            current.gpu_devices.push(if keep {
                self.current.gpu_devices[p as usize]
            } else {
                0
            });
        }
        let snap = Snapshot {
            resources: self.resources.clone(),
            symbols: self.symbols.clone(),
            nodes: self.nodes.clone(),
            pods,
            pdbs: self.pdbs.clone(),
            current,
            left_out: self.left_out.clone(),
            volumes: self.volumes.clone(),
        };
        let first = bound.len() as PodId;
        (snap, (first..first + templates.len() as PodId).collect())
    }

    /// The pods `rows` names (with repetition); a row with `Some(i)` becomes the i-th arrival.
    fn copy_pod_rows(&self, rows: &[(PodId, Option<usize>)]) -> Pods {
        // Listing every column (no `..`) makes adding a column to `Pods` a compile error here
        // until it is copied too.
        let Pods {
            namespace,
            name,
            uid,
            resource_version,
            phase,
            priority,
            created,
            labels,
            owner,
            requests,
            gpu,
            nonzero,
            node_selector,
            affinity,
            tolerations,
            spread,
            host_ports,
            local_storage,
            claims,
            scheduler_name,
            opt_out,
            opt_in,
            moved_at,
            mirror,
            terminating,
            gpu_devices_inferred,
            index: _,
            constraint_classes: _,
        } = &self.pods;
        let n = rows.len();
        let mut out = Pods {
            requests: ResourceMatrix::zeros(requests.width(), n),
            index: HashMap::with_capacity(n),
            ..Pods::default()
        };
        for &(p, arrival) in rows {
            let p = p as usize;
            let ns = self.symbols.resolve(namespace[p]);
            let (pod_name, pod_uid) = match arrival {
                None => (name[p].clone(), uid[p].clone()),
                Some(i) => {
                    let mut candidate = format!("{}-{i}", name[p]);
                    while out.index.contains_key(&format!("{ns}/{candidate}")) {
                        candidate.push('x');
                    }
                    (candidate, format!("{}-{i}", uid[p]))
                }
            };
            out.index
                .insert(format!("{ns}/{pod_name}"), out.name.len() as PodId);
            out.namespace.push(namespace[p]);
            out.name.push(pod_name);
            out.uid.push(pod_uid);
            // An arrival is a new pod: the API has not stored it yet.
            out.resource_version.push(if arrival.is_some() {
                String::new()
            } else {
                resource_version[p].clone()
            });
            out.phase.push(if arrival.is_some() {
                PodPhase::Pending
            } else {
                phase[p]
            });
            out.priority.push(priority[p]);
            out.created.push(created[p]);
            out.labels.push(labels[p].clone());
            out.owner.push(owner[p].clone());
            let row = out.name.len() - 1;
            out.requests.row_mut(row).copy_from_slice(requests.row(p));
            out.gpu.push(gpu[p]);
            out.nonzero.push(nonzero[p]);
            out.node_selector.push(node_selector[p].clone());
            out.affinity.push(affinity[p].clone());
            out.tolerations.push(tolerations[p].clone());
            out.spread.push(spread[p].clone());
            out.host_ports.push(host_ports[p].clone());
            out.local_storage.push(local_storage[p]);
            out.claims.push(claims[p].clone());
            out.scheduler_name.push(scheduler_name[p]);
            out.opt_out.push(opt_out[p]);
            out.opt_in.push(opt_in[p]);
            out.moved_at
                .push(if arrival.is_some() { None } else { moved_at[p] });
            out.mirror.push(mirror[p]);
            // An arrival is a new pod, not one being deleted.
            out.terminating.push(arrival.is_none() && terminating[p]);
            out.gpu_devices_inferred
                .push(arrival.is_none() && gpu_devices_inferred[p]);
        }
        out
    }
}
