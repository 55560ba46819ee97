//! The incoming pod's constraints (its own, or the defaults), interned, with what they count and
//! which nodes they include: the state both extension points read (upstream's `common.go`).

use std::sync::Arc;

use super::defaults::{spread_by_default, HOSTNAME};
use super::PodTopologySpread;
use crate::intern::Sym;
use crate::model::selector::InternedSelector;
use crate::model::spread::{InclusionPolicy, TopologySpreadConstraint, WhenUnsatisfiable};
use crate::schedule::framework::Cycle;
use crate::schedule::pod_index::{placed, MemoTag, PodIndex, Topology};
use crate::snapshot::{NodeId, PodId, Snapshot};

/// Which placed pods a constraint counts.
#[derive(Clone)]
pub(super) enum Selects {
    /// A null selector: none.
    Nothing,
    /// The constraint's selector, with `matchLabelKeys` merged in.
    Labels(InternedSelector),
    /// Default constraints: the pods of the incoming pod's controller.
    SameController,
}

impl Selects {
    /// Lists that hold every pod counted in namespace `ns` for the incoming pod `owner` (and
    /// maybe others: check with [`Selects::counts`]); an empty selector counts nothing.
    fn candidates<'i>(&self, index: &'i PodIndex, ns: Sym, owner: PodId) -> Vec<&'i [PodId]> {
        match self {
            Selects::Nothing => Vec::new(),
            Selects::Labels(sel) if sel.is_empty() => Vec::new(),
            Selects::Labels(sel) => index.candidates(sel, Some(&[ns])),
            Selects::SameController => vec![index.same_controller(owner)],
        }
    }

    /// Whether candidate `q` counts, wherever it is placed (upstream `countPodsMatchSelector`:
    /// pods of the incoming pod's namespace `ns`, not being deleted).
    fn counts(&self, snap: &Snapshot, ns: Sym, q: PodId) -> bool {
        snap.pods.namespace[q as usize] == ns
            && !snap.pods.terminating[q as usize]
            && match self {
                Selects::Nothing => false,
                Selects::Labels(sel) => sel.matches(&snap.pods.labels[q as usize]),
                // The candidates are the controller's pods.
                Selects::SameController => true,
            }
    }
}

/// A constraint of the incoming pod, interned.
pub(super) struct Constraint {
    pub(super) max_skew: i64,
    /// `None`: no node has the key.
    pub(super) key: Option<Sym>,
    /// The nodes' domains of the key.
    pub(super) topology: Arc<Topology>,
    /// `kubernetes.io/hostname`: scored per node.
    pub(super) hostname: bool,
    /// Index into [`Constraints::selectors`].
    pub(super) selector: usize,
    pub(super) min_domains: i64,
    pub(super) honor_affinity: bool,
    pub(super) honor_taints: bool,
}

/// The incoming pod's constraints of one kind, with their distinct selectors: a zone and a
/// hostname constraint usually share one, and each placed pod is matched once per selector.
pub(super) struct Constraints {
    pub(super) list: Vec<Constraint>,
    pub(super) selectors: Vec<Selects>,
}

impl PodTopologySpread {
    /// The pod's constraints with `action` (upstream `filterTopologySpreadConstraints`), or the
    /// default ones when the pod has none at all (`buildDefaultConstraints`).
    ///
    /// A pod's own constraints are kept for the next replica of its controller (interning the
    /// selectors is most of the cost), when that replica's are equal.
    pub(super) fn constraints(
        &self,
        snap: &Snapshot,
        index: &PodIndex,
        p: PodId,
        action: WhenUnsatisfiable,
    ) -> Arc<Constraints> {
        let pods = &snap.pods;
        let own = &pods.spread[p as usize];
        if own.is_empty() {
            if !spread_by_default(snap, p) {
                return Arc::new(Constraints {
                    list: Vec::new(),
                    selectors: Vec::new(),
                });
            }
            let build = || self.build_constraints(snap, index, p, action);
            if !self.system_defaulted {
                return Arc::new(build());
            }
            // The system defaults select by the pod's controller when used: one set for all pods.
            let hard = action == WhenUnsatisfiable::DoNotSchedule;
            return index.shared(MemoTag::SpreadSystemDefaults { hard }, build);
        }
        let reads_labels = own.iter().any(|c| !c.match_label_keys.is_empty());
        // The snapshot shares equal lists (one allocation each): the same allocation is the same
        // value, and another one, at worst, is built again.
        let alike = |q: PodId| {
            Arc::ptr_eq(&pods.spread[q as usize], own)
                && (!reads_labels || pods.labels[q as usize] == pods.labels[p as usize])
        };
        let tag = match action {
            WhenUnsatisfiable::DoNotSchedule => MemoTag::HardSpread,
            WhenUnsatisfiable::ScheduleAnyway => MemoTag::SoftSpread,
        };
        index.per_controller(p, tag, alike, || {
            self.build_constraints(snap, index, p, action)
        })
    }

    fn build_constraints(
        &self,
        snap: &Snapshot,
        index: &PodIndex,
        p: PodId,
        action: WhenUnsatisfiable,
    ) -> Constraints {
        let own = &snap.pods.spread[p as usize];
        let defaulted = own.is_empty();
        let mut out = Constraints {
            list: Vec::new(),
            selectors: Vec::new(),
        };
        if defaulted && !spread_by_default(snap, p) {
            return out;
        }
        let list: &[TopologySpreadConstraint] = if defaulted { &self.defaults } else { own };
        let mut sources: Vec<&TopologySpreadConstraint> = Vec::new();
        for c in list.iter().filter(|c| c.when_unsatisfiable == action) {
            let same = |s: &&TopologySpreadConstraint| {
                s.label_selector == c.label_selector && s.match_label_keys == c.match_label_keys
            };
            let selector = match sources.iter().position(same) {
                Some(i) => i,
                None => {
                    sources.push(c);
                    out.selectors.push(if defaulted {
                        Selects::SameController
                    } else {
                        match &c.label_selector {
                            None => Selects::Nothing,
                            Some(sel) => {
                                let mut s = InternedSelector::new(sel, &snap.symbols);
                                s.merge_label_keys(
                                    &snap.symbols,
                                    &snap.pods.labels[p as usize],
                                    &c.match_label_keys,
                                    &[],
                                );
                                Selects::Labels(s)
                            }
                        }
                    });
                    out.selectors.len() - 1
                }
            };
            let key = snap.symbols.get(&c.topology_key);
            out.list.push(Constraint {
                max_skew: i64::from(c.max_skew),
                key,
                topology: index.topology(snap, key),
                hostname: c.topology_key == HOSTNAME,
                selector,
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                honor_affinity: c.node_affinity_policy == InclusionPolicy::Honor,
                honor_taints: c.node_taints_policy == InclusionPolicy::Honor,
            });
        }
        out
    }
}

impl Constraints {
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Calls `f(selector, node)` for each placed pod a selector counts (upstream
    /// `countPodsMatchSelector`: pods of the incoming pod's namespace; an empty selector counts
    /// nothing), reading only the index's candidates.
    pub(super) fn for_each_counted(
        &self,
        cx: &Cycle,
        index: &PodIndex,
        mut f: impl FnMut(usize, NodeId),
    ) {
        let ns = cx.snap.pods.namespace[cx.p()];
        for (i, s) in self.selectors.iter().enumerate() {
            for &q in s.candidates(index, ns, cx.pod).into_iter().flatten() {
                if let Some(n) = placed(cx, q) {
                    if s.counts(cx.snap, ns, q) {
                        f(i, n);
                    }
                }
            }
        }
    }

    /// Whether the incoming pod matches constraint `c`'s selector itself (an empty selector
    /// matches it, though it counts no placed pod — upstream's `selfMatchNum`).
    pub(super) fn matches_self(&self, c: &Constraint, snap: &Snapshot, p: PodId) -> bool {
        match &self.selectors[c.selector] {
            Selects::Nothing => false,
            Selects::Labels(s) => s.matches(&snap.pods.labels[p as usize]),
            Selects::SameController => true,
        }
    }
}

impl Constraint {
    /// Node `n`'s value of the key, if it has the key.
    pub(super) fn value(&self, snap: &Snapshot, n: NodeId) -> Option<Sym> {
        snap.node_label_sym(n, self.key?)
    }

    /// Node `n`'s domain (numbered by [`Topology`]), if it has the key.
    pub(super) fn domain(&self, n: NodeId) -> Option<u32> {
        self.topology.domain(n)
    }
}

pub(super) fn has_all_keys(n: NodeId, constraints: &[Constraint]) -> bool {
    constraints.iter().all(|c| c.domain(n).is_some())
}

/// Whether a node counts for a constraint under its inclusion policies: it passes the pod's
/// node affinity and taints (`matchNodeInclusionPolicies`).
pub(super) struct Inclusion<'a> {
    cx: &'a Cycle<'a>,
    /// Per node, the pod's nodeSelector and required node affinity; `None`: it has none.
    admitted: Option<Arc<Vec<bool>>>,
}

impl<'a> Inclusion<'a> {
    pub(super) fn new(cx: &'a Cycle<'a>, index: &PodIndex) -> Self {
        Inclusion {
            cx,
            admitted: index.node_affinity(cx.snap, cx.pod),
        }
    }

    pub(super) fn includes(&self, c: &Constraint, n: NodeId) -> bool {
        let snap = self.cx.snap;
        (!c.honor_affinity || self.admitted.as_ref().is_none_or(|a| a[n as usize]))
            && (!c.honor_taints
                || snap.nodes.taints[n as usize].is_empty()
                || snap.untolerated_taint(self.cx.pod, n).is_none())
    }
}

// ---------------------------------------------------------------------------------------------
// For models of a whole placement

/// One of a pod's `DoNotSchedule` constraints as the filter reads it, for a model that places
/// many pods at once (the rebalancer's) and so must count per domain what the filter counts for
/// one pod: the eligible nodes' domains, and which pods it counts.
pub(crate) struct HardSpread {
    pub(crate) max_skew: i64,
    /// `minDomains` (default 1): with fewer eligible domains the global minimum is 0.
    pub(crate) min_domains: i64,
    /// Per node, its domain (numbered by [`Topology`]) when the node is eligible: it has every
    /// key of the pod's constraints and passes the inclusion policies. `None`: counted nowhere.
    pub(crate) domain: Vec<Option<u32>>,
    selects: Selects,
    namespace: Sym,
    owner: PodId,
}

impl HardSpread {
    /// Lists that hold every pod the constraint counts (and maybe others: check with
    /// [`HardSpread::counts`]).
    pub(crate) fn candidates<'i>(&self, index: &'i PodIndex) -> Vec<&'i [PodId]> {
        self.selects.candidates(index, self.namespace, self.owner)
    }

    /// Whether the constraint counts candidate `q` wherever it is placed (as the filter does,
    /// see [`Selects::counts`]).
    pub(crate) fn counts(&self, snap: &Snapshot, q: PodId) -> bool {
        self.selects.counts(snap, self.namespace, q)
    }
}

impl PodTopologySpread {
    /// The `DoNotSchedule` constraints of the cycle's pod (its own, or the defaults), as the
    /// filter reads them.
    pub(crate) fn hard_constraints(&self, cx: &Cycle) -> Vec<HardSpread> {
        let snap = cx.snap;
        let index = cx.state.pod_index();
        let constraints = self.constraints(snap, &index, cx.pod, WhenUnsatisfiable::DoNotSchedule);
        let list = &constraints.list;
        if list.is_empty() {
            // Most carriers of other rules have no constraint: spare them the node scan.
            return Vec::new();
        }
        let inclusion = Inclusion::new(cx, &index);
        list.iter()
            .map(|c| HardSpread {
                max_skew: c.max_skew,
                min_domains: c.min_domains,
                domain: (0..snap.nodes.len() as NodeId)
                    .map(|n| {
                        (has_all_keys(n, list) && inclusion.includes(c, n))
                            .then(|| c.domain(n))
                            .flatten()
                    })
                    .collect(),
                selects: constraints.selectors[c.selector].clone(),
                namespace: snap.pods.namespace[cx.p()],
                owner: cx.pod,
            })
            .collect()
    }
}
