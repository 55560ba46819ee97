//! A cluster snapshot: nodes, pods and PodDisruptionBudgets parsed once from Kubernetes JSON and
//! stored as columns (one vector per field, indexed by node or pod number).

mod classes;
mod devices;
mod ingest;
pub(crate) mod limits;
mod merge;
mod reach;
mod shared;

use std::collections::HashMap;
use std::sync::Arc;

pub(crate) use classes::ConstraintClasses;
pub use ingest::{
    parse_documents, parse_documents_with, parse_file, spec_effective_request, ParseOptions,
    DEFAULT_MAX_INPUT_BYTES,
};
pub use limits::MAX_TOTAL;
pub use merge::{list_page, merge_lists, PageSummary};

use crate::hash::IdMap;
use crate::intern::{Interner, Sym};
use crate::model::affinity::Affinity;
use crate::model::gpu::{DeviceMask, GpuDemand};
use crate::model::pdb::PodDisruptionBudget;
use crate::model::pod::{HostPort, LocalVolumes, PodPhase};
use crate::model::selector::LabelSet;
use crate::model::spread::TopologySpreadConstraint;
use crate::model::taints::{Taint, Toleration};
use crate::model::volume::{PersistentVolume, PersistentVolumeClaim, StorageClass};
use crate::model::Labels;
use crate::resources::{ResourceMatrix, ResourceNames};

pub type NodeId = u32;
pub type PodId = u32;

/// Labels with interned keys and values, sorted by key.
pub type SymLabels = Box<[(Sym, Sym)]>;

/// A view of interned labels that answers string look-ups.
#[derive(Clone, Copy)]
pub struct LabelsRef<'a> {
    pub labels: &'a [(Sym, Sym)],
    pub symbols: &'a Interner,
}

impl<'a> LabelsRef<'a> {
    pub fn value(self, key: &str) -> Option<&'a str> {
        let key = self.symbols.get(key)?;
        let i = self.labels.binary_search_by_key(&key, |&(k, _)| k).ok()?;
        Some(self.symbols.resolve(self.labels[i].1))
    }
}

impl LabelSet for LabelsRef<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        self.value(key)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: Sym,
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, Default)]
pub struct Nodes {
    pub name: Vec<String>,
    /// `metadata.resourceVersion` (empty when the input had none): a write's precondition.
    pub resource_version: Vec<String>,
    pub allocatable: ResourceMatrix,
    pub labels: Vec<SymLabels>,
    pub taints: Vec<Vec<Taint>>,
    pub unschedulable: Vec<bool>,
    pub ready: Vec<bool>,
    /// Number of GPU devices (1000 milli each).
    pub gpu_devices: Vec<u32>,
    /// Labelled `node-role.kubernetes.io/control-plane` (or the older `.../master`).
    pub control_plane: Vec<bool>,
    /// Value of the `nvidia.com/gpu.product` label.
    pub gpu_model: Vec<Option<Sym>>,
    pub(crate) index: HashMap<String, NodeId>,
}

impl Nodes {
    pub fn len(&self) -> usize {
        self.name.len()
    }
    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
    }
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Pods {
    pub namespace: Vec<Sym>,
    pub name: Vec<String>,
    pub uid: Vec<String>,
    /// `metadata.resourceVersion` (empty when the input had none): a write's precondition.
    pub resource_version: Vec<String>,
    pub phase: Vec<PodPhase>,
    pub priority: Vec<i32>,
    /// Creation time, seconds since the epoch.
    pub created: Vec<Option<i64>>,
    pub labels: Vec<SymLabels>,
    /// The managing controller.
    pub owner: Vec<Option<Owner>>,
    /// Effective requests (see `PodSpec::effective_request`), GPUs excluded.
    pub requests: ResourceMatrix,
    pub gpu: Vec<GpuDemand>,
    /// cpu/memory with kube-scheduler's scoring defaults (see `EffectiveRequest::nonzero`).
    pub nonzero: Vec<[i64; 2]>,
    // Shared: equal values are one allocation (see `shared`), so comparing replicas' is cheap.
    pub node_selector: Vec<Arc<Labels>>,
    pub affinity: Vec<Option<Arc<Affinity>>>,
    pub tolerations: Vec<Arc<[Toleration]>>,
    pub spread: Vec<Arc<[TopologySpreadConstraint]>>,
    pub host_ports: Vec<Vec<HostPort>>,
    /// `emptyDir` / `hostPath` volumes.
    pub local_storage: Vec<LocalVolumes>,
    /// The PersistentVolumeClaims its volumes use (names in its namespace).
    pub claims: Vec<Box<[String]>>,
    pub scheduler_name: Vec<Sym>,
    /// An annotation that forbids evicting the pod, if any.
    pub opt_out: Vec<Option<OptOut>>,
    /// An annotation that lets the pod be evicted despite the usual protections (critical
    /// priority, local storage, no controller), as the tool that reads it does.
    pub opt_in: Vec<bool>,
    /// When kube-engine last moved the pod (annotation `kube-engine.io/moved-at`, seconds since
    /// the epoch; a replacement carries it): what keeps a rebalance from moving it straight back.
    pub moved_at: Vec<Option<i64>>,
    /// Static pods (annotation `kubernetes.io/config.mirror`).
    pub mirror: Vec<bool>,
    /// Being deleted (`metadata.deletionTimestamp` set): it still holds its node's resources and
    /// ports, but PodTopologySpread no longer counts it, as upstream does not.
    pub terminating: Vec<bool>,
    /// Whether the GPU devices were assigned by the loader (no annotation on a bound pod).
    pub gpu_devices_inferred: Vec<bool>,
    pub(crate) index: HashMap<String, PodId>,
    /// See [`Snapshot::constraint_classes`].
    pub(crate) constraint_classes: classes::ClassesCell,
}

impl Pods {
    pub fn len(&self) -> usize {
        self.name.len()
    }
    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
    }
    /// The pod called `namespace/name`.
    pub fn id(&self, key: &str) -> Option<PodId> {
        self.index.get(key).copied()
    }
}

/// The annotations teams already use to keep a pod from being evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptOut {
    /// `kube-engine.io/evict: "false"`.
    KubeEngine,
    /// `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`.
    SafeToEvict,
    /// `karpenter.sh/do-not-disrupt: "true"`.
    DoNotDisrupt,
}

impl OptOut {
    pub fn as_str(self) -> &'static str {
        match self {
            OptOut::KubeEngine => "annotated kube-engine.io/evict: \"false\"",
            OptOut::SafeToEvict => {
                "annotated cluster-autoscaler.kubernetes.io/safe-to-evict: \"false\""
            }
            OptOut::DoNotDisrupt => "annotated karpenter.sh/do-not-disrupt: \"true\"",
        }
    }
}

/// Where pods are: node and GPU devices per pod. The snapshot's own placement is one; a scheduler
/// or rebalancer produces others for the same pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    pub node: Vec<Option<NodeId>>,
    pub gpu_devices: Vec<DeviceMask>,
}

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub resources: ResourceNames,
    pub symbols: Interner,
    pub nodes: Nodes,
    pub pods: Pods,
    pub pdbs: Vec<PodDisruptionBudget>,
    /// The placement the snapshot was taken in.
    pub current: Assignment,
    /// Pods the input had but the snapshot does not: bound to a node the input lacks.
    pub left_out: Vec<LeftOut>,
    pub volumes: Volumes,
}

/// The persistent storage the input describes, by name (each with where it was in the input).
#[derive(Clone, Debug, Default)]
pub struct Volumes {
    /// The input had PersistentVolumeClaims: without any, where pods' claims reach is unknown.
    pub described: bool,
    /// By `namespace/name`.
    pub claims: HashMap<String, (PersistentVolumeClaim, String)>,
    pub volumes: HashMap<String, (PersistentVolume, String)>,
    pub classes: HashMap<String, (StorageClass, String)>,
}

/// A pod left out of a snapshot because the node it is bound to is not in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    /// `namespace/name`.
    pub pod: String,
    pub node: String,
    /// Where the pod was in the input (`items[12]`).
    pub path: String,
}

impl Snapshot {
    pub fn node_labels(&self, n: NodeId) -> LabelsRef<'_> {
        LabelsRef {
            labels: &self.nodes.labels[n as usize],
            symbols: &self.symbols,
        }
    }

    pub fn pod_labels(&self, p: PodId) -> LabelsRef<'_> {
        LabelsRef {
            labels: &self.pods.labels[p as usize],
            symbols: &self.symbols,
        }
    }

    /// `namespace/name` of a pod.
    pub fn pod_key(&self, p: PodId) -> String {
        let p = p as usize;
        format!(
            "{}/{}",
            self.symbols.resolve(self.pods.namespace[p]),
            self.pods.name[p]
        )
    }

    /// Pods that hold resources where they are: not terminal.
    pub fn is_active(&self, p: PodId) -> bool {
        !self.pods.phase[p as usize].is_terminal()
    }

    /// DaemonSet pods run on every eligible node; packing ignores them when counting used nodes.
    pub fn is_daemon(&self, p: PodId) -> bool {
        self.pods.owner[p as usize]
            .as_ref()
            .is_some_and(|o| self.symbols.resolve(o.kind) == "DaemonSet")
    }

    /// Total GPU devices in the cluster.
    pub fn total_gpu_devices(&self) -> u64 {
        self.nodes.gpu_devices.iter().map(|&d| u64::from(d)).sum()
    }
}

impl Snapshot {
    /// The pod's `nodeSelector` and required node affinity admit the node (NodeAffinity filter).
    pub fn node_affinity_admits(&self, p: PodId, n: NodeId) -> bool {
        let labels = self.node_labels(n);
        let p = p as usize;
        if !self.pods.node_selector[p]
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
        {
            return false;
        }
        let required = self.pods.affinity[p]
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.required.as_ref());
        required.is_none_or(|sel| sel.matches(&self.nodes.name[n as usize], &labels))
    }

    /// Per node, [`Snapshot::node_affinity_admits`]. Each requirement is judged once per distinct
    /// value of its key among the nodes, which are far fewer than the nodes, instead of reading
    /// the strings once per node.
    pub(crate) fn node_affinity_admitted(&self, p: PodId) -> Vec<bool> {
        let p = p as usize;
        let nodes = 0..self.nodes.len() as NodeId;
        let value = |key: Option<Sym>, n: NodeId| key.and_then(|k| self.node_label_sym(n, k));
        let mut admitted = vec![true; self.nodes.len()];
        for (key, want) in self.pods.node_selector[p].iter() {
            let (key, want) = (self.symbols.get(key), self.symbols.get(want));
            for n in nodes.clone() {
                let ok = &mut admitted[n as usize];
                *ok = *ok && want.is_some() && value(key, n) == want;
            }
        }
        let required = self.pods.affinity[p]
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.required.as_ref());
        let Some(required) = required else {
            return admitted;
        };
        let mut any = vec![false; self.nodes.len()];
        for term in &required.node_selector_terms {
            if term.match_expressions.is_empty() && term.match_fields.is_empty() {
                continue; // matches no node
            }
            let mut all = admitted.clone();
            for r in &term.match_expressions {
                let key = self.symbols.get(&r.key);
                let mut by_value: IdMap<Option<Sym>, bool> = IdMap::default();
                for n in nodes.clone() {
                    if !all[n as usize] {
                        continue;
                    }
                    let v = value(key, n);
                    all[n as usize] = *by_value
                        .entry(v)
                        .or_insert_with(|| r.matches_value(v.map(|v| self.symbols.resolve(v))));
                }
            }
            for r in &term.match_fields {
                for (ok, name) in all.iter_mut().zip(&self.nodes.name) {
                    *ok = *ok && r.matches_value(Some(name));
                }
            }
            for (a, ok) in any.iter_mut().zip(all) {
                *a |= ok;
            }
        }
        any
    }

    /// The first NoSchedule/NoExecute taint of the node the pod does not tolerate.
    pub fn untolerated_taint(&self, p: PodId, n: NodeId) -> Option<&Taint> {
        use crate::model::taints::{first_untolerated, TaintEffect};
        first_untolerated(
            &self.nodes.taints[n as usize],
            &self.pods.tolerations[p as usize],
            &[TaintEffect::NoSchedule, TaintEffect::NoExecute],
        )
    }

    /// The value of label `key` on node `n`, interned.
    pub fn node_label_sym(&self, n: NodeId, key: Sym) -> Option<Sym> {
        let labels = &self.nodes.labels[n as usize];
        labels
            .binary_search_by_key(&key, |&(k, _)| k)
            .ok()
            .map(|i| labels[i].1)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_affinity_admitted_agrees_with_admits_node_by_node() {
        let node = |name: &str, labels: &str| {
            format!(r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{{labels}}}}}}}"#)
        };
        let required = |terms: &str| {
            format!(
                r#""affinity":{{"nodeAffinity":{{"requiredDuringSchedulingIgnoredDuringExecution":
                {{"nodeSelectorTerms":[{terms}]}}}}}},"#
            )
        };
        let specs = [
            String::new(),
            r#""nodeSelector":{"zone":"a"},"#.to_string(),
            r#""nodeSelector":{"zone":"a","pool":"gpu"},"#.to_string(),
            r#""nodeSelector":{"zone":"nowhere"},"#.to_string(),
            r#""nodeSelector":{"missing":"x"},"#.to_string(),
            required(r#"{"matchExpressions":[{"key":"zone","operator":"In","values":["a","b"]}]}"#),
            required(r#"{"matchExpressions":[{"key":"zone","operator":"NotIn","values":["a"]}]}"#),
            required(r#"{"matchExpressions":[{"key":"pool","operator":"DoesNotExist"}]}"#),
            required(r#"{"matchExpressions":[{"key":"cores","operator":"Gt","values":["8"]}]}"#),
            required(r#"{"matchExpressions":[{"key":"cores","operator":"Lt","values":["16"]}]}"#),
            required(
                r#"{"matchFields":[{"key":"metadata.name","operator":"In","values":["n2","n4"]}]}"#,
            ),
            required(
                r#"{"matchExpressions":[{"key":"zone","operator":"In","values":["b"]}]},
                {"matchExpressions":[{"key":"pool","operator":"Exists"}],
                 "matchFields":[{"key":"metadata.name","operator":"NotIn","values":["n1"]}]}"#,
            ),
            required("{}"),
            format!(
                r#""nodeSelector":{{"zone":"a"}},{}"#,
                required(
                    r#"{"matchExpressions":[{"key":"cores","operator":"Gt","values":["4"]}]}"#
                )
            ),
        ];
        let nodes = [
            node("n0", r#""zone":"a","cores":"16""#),
            node("n1", r#""zone":"a","pool":"gpu","cores":"8""#),
            node("n2", r#""zone":"b","pool":"cpu","cores":"x""#),
            node("n3", r#""pool":"gpu""#),
            node("n4", ""),
            node("n5", r#""zone":"a","pool":"gpu","cores":"32""#),
        ];
        let pods: Vec<String> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                format!(
                    r#"{{"kind":"Pod","metadata":{{"name":"p{i}","namespace":"a"}},
                    "spec":{{{spec}"containers":[{{"name":"c"}}]}}}}"#
                )
            })
            .collect();
        let items: Vec<&String> = nodes.iter().chain(&pods).collect();
        let doc = format!(
            r#"{{"kind":"List","items":[{}]}}"#,
            items
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        let s = crate::snapshot::parse_documents(&[doc.as_bytes()]).unwrap();
        let mut admitted_somewhere = 0;
        for p in 0..s.pods.len() as super::PodId {
            let one_by_one: Vec<bool> = (0..s.nodes.len() as super::NodeId)
                .map(|n| s.node_affinity_admits(p, n))
                .collect();
            assert_eq!(s.node_affinity_admitted(p), one_by_one, "pod {p}");
            admitted_somewhere += usize::from(one_by_one.contains(&true));
        }
        // The cases are not all trivially equal: some pods fit somewhere, some nowhere.
        assert!(admitted_somewhere > 3 && admitted_somewhere < s.pods.len());
    }
}
