//! The same cluster with a stream of arriving pods, each its own pod: an online replay samples a
//! pod list *with replacement*, and a pod that arrives twice is two pods (two replicas of one
//! template), not one pod placed twice.

use std::collections::HashMap;

use crate::error::ArgumentError;
use crate::model::pod::PodPhase;
use crate::resources::ResourceMatrix;
use crate::snapshot::limits::{self, Excess};
use crate::snapshot::{Assignment, PodId, Pods, Snapshot};

impl Snapshot {
    /// This cluster with the pods it has bound, and then one new Pending, unbound pod per entry of
    /// `templates`, in order: a copy of that pod named `<name>-<i>` (`i` its position in
    /// `templates`). The snapshot's unbound pods are dropped: the arrivals stand for them. Nodes
    /// and PodDisruptionBudgets are kept. Returns the new snapshot and the ids of the arrivals;
    /// an error on `arrivals` when the copies take the pods' requests past the snapshot limit
    /// ([`crate::snapshot::MAX_TOTAL`]).
    pub fn with_arrivals(
        &self,
        templates: &[PodId],
    ) -> Result<(Snapshot, Vec<PodId>), ArgumentError> {
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
        if let Some(excess) = limits::first_excess(&snap) {
            let who = match excess {
                Excess::Pod(p, _) => match p.checked_sub(first) {
                    Some(i) => format!("arrivals[{i}] ({})", self.pod_key(templates[i as usize])),
                    None => snap.pod_key(p),
                },
                Excess::Node(n, _) => snap.nodes.name[n as usize].clone(),
            };
            let message = format!("{who}: {}", limits::describe(&snap, excess));
            return Err(ArgumentError::invalid("arrivals", message));
        }
        Ok((snap, (first..first + templates.len() as PodId).collect()))
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

#[cfg(test)]
mod tests {
    use crate::snapshot::parse_documents;

    #[test]
    fn copies_past_the_limit_are_refused() {
        let doc = r#"{"kind":"List","items":[
            {"kind":"Node","metadata":{"name":"n"},"status":{"allocatable":{"memory":"4Ei"}}},
            {"kind":"Pod","metadata":{"name":"big","namespace":"a"},
             "spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"1","memory":"3Ei"}}}]}}]}"#;
        let s = parse_documents(&[doc.as_bytes()]).unwrap();
        let (copies, ids) = s.with_arrivals(&[0]).unwrap();
        assert_eq!((copies.pods.len(), ids), (1, vec![0]));
        let e = s.with_arrivals(&[0, 0]).unwrap_err();
        assert_eq!(e.argument, "arrivals");
        assert!(
            e.message.starts_with(
                "arrivals[1] (a/big): the pods up to this one request more than 4Ei (2^62) memory"
            ),
            "{}",
            e.message
        );
    }
}
