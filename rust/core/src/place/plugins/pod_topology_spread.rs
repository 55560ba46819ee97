//! PodTopologySpread: `DoNotSchedule` topology spread constraints filter a node; `ScheduleAnyway`
//! ones score it (fewer matching pods in the node's domain is better), as kube-scheduler's
//! `podtopologyspread` plugin.
//!
//! Filter, per constraint: the eligible nodes are those that have every constraint's topology key
//! and pass the pod's `nodeSelector` / required node affinity (`nodeAffinityPolicy: Honor`, the
//! default) and its taints (`nodeTaintsPolicy: Honor`; the default is `Ignore`). Each eligible
//! domain counts the placed pods in the pod's namespace that the selector (narrowed by
//! `matchLabelKeys`) matches. A node is rejected when its domain's count, plus one if the pod
//! matches the selector itself, exceeds the global minimum by more than `maxSkew`; the minimum is
//! 0 while there are fewer eligible domains than `minDomains` (default 1). A node without a
//! constraint's key is rejected outright.
//!
//! Score: each `ScheduleAnyway` constraint gives a node `count × log(domains + 2) + maxSkew − 1`,
//! where the domains are those of the feasible nodes (for `kubernetes.io/hostname`: the feasible
//! nodes themselves, counted on the node); the sums are rounded and reversed to 0..100 so the
//! emptiest domain scores highest.
//!
//! A pod with no constraints of its own gets the plugin's default constraints (by default
//! upstream's system defaults: hostname maxSkew 3 and zone maxSkew 5, both `ScheduleAnyway`).
//! Upstream applies them with a selector built from the Services, ReplicaSets, StatefulSets and
//! ReplicationControllers that select the pod. A snapshot has none of those objects, so the
//! defaults apply to pods whose controller is a ReplicaSet, StatefulSet or ReplicationController,
//! and select the pods of that same controller: the set a ReplicaSet's or StatefulSet's selector
//! matches in practice. Pods owned by nothing, a DaemonSet or a Job get no default spreading
//! (upstream would spread them only if a Service selected them). With the system defaults, nodes
//! without every key are still scored (by the keys they have); with constraints of the pod's own
//! or listed defaults, they score 0.
//!
//! Upstream's quirks are kept: an empty `labelSelector` (`{}`) counts no placed pod yet matches
//! the pod itself; when scoring, nodes without a key form one domain of the value "".
//!
//! The placed pods a selector counts come from the snapshot's pod index (candidates by label, or
//! the controller's pods), and the eligible domains of a constraint set are kept there per set:
//! a cycle touches the pods that can match and the feasible nodes, not the whole cluster. The
//! index also numbers each topology key's values, so a cycle counts per domain in arrays.

use std::cell::RefCell;
use std::sync::Arc;

use serde::Deserialize;

use crate::hash::IdSet;
use crate::intern::Sym;
use crate::model::spread::{InclusionPolicy, TopologySpreadConstraint, WhenUnsatisfiable};
use crate::place::framework::{
    add_weighted_scores, Cycle, CycleData, Divider, FilterPlugin, PreFilter, PreScore, Reason,
    ScorePlugin, MAX_NODE_SCORE,
};
use crate::place::pod_index::{placed, InternedSelector, MemoTag, PodIndex, Topology};
use crate::snapshot::{NodeId, PodId, Snapshot};

const HOSTNAME: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

/// How a pod without constraints of its own gets some (`defaultingType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum DefaultingType {
    /// Upstream's built-in defaults; `defaultConstraints` must then be empty.
    #[default]
    System,
    /// `defaultConstraints` as given (possibly none).
    List,
}

/// `PodTopologySpreadArgs`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTopologySpreadArgs {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub default_constraints: Vec<DefaultConstraint>,
    #[serde(default)]
    pub defaulting_type: DefaultingType,
}

/// A `v1.TopologySpreadConstraint` in `defaultConstraints`: the selector comes from the pod.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultConstraint {
    #[serde(default)]
    pub max_skew: i32,
    #[serde(default)]
    pub topology_key: String,
    pub when_unsatisfiable: WhenUnsatisfiable,
    /// Forbidden; read only to say so.
    #[serde(default)]
    pub label_selector: Option<serde_json::Value>,
    #[serde(default)]
    pub min_domains: Option<i32>,
    #[serde(default)]
    pub node_affinity_policy: Option<InclusionPolicy>,
    #[serde(default)]
    pub node_taints_policy: Option<InclusionPolicy>,
    #[serde(default)]
    pub match_label_keys: Vec<String>,
}

pub struct PodTopologySpread {
    defaults: Vec<TopologySpreadConstraint>,
    system_defaulted: bool,
}

fn system_default(max_skew: i32, key: &str) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew,
        topology_key: key.into(),
        when_unsatisfiable: WhenUnsatisfiable::ScheduleAnyway,
        label_selector: None,
        min_domains: None,
        node_affinity_policy: InclusionPolicy::Honor,
        node_taints_policy: InclusionPolicy::Ignore,
        match_label_keys: Vec::new(),
    }
}

impl PodTopologySpread {
    /// Validates the args as upstream's `ValidatePodTopologySpreadArgs`.
    pub fn new(args: PodTopologySpreadArgs) -> Result<Self, String> {
        if args.defaulting_type == DefaultingType::System && !args.default_constraints.is_empty() {
            return Err(
                "defaultingType: Invalid value: \"System\": when .defaultConstraints are not empty (use \"List\")"
                    .into(),
            );
        }
        let mut defaults: Vec<TopologySpreadConstraint> = Vec::new();
        for (i, c) in args.default_constraints.into_iter().enumerate() {
            let at = format!("defaultConstraints[{i}]");
            if c.max_skew <= 0 {
                return Err(format!(
                    "{at}.maxSkew: Invalid value: {}: not in valid range (0, inf)",
                    c.max_skew
                ));
            }
            if c.topology_key.is_empty() {
                return Err(format!(
                    "{at}.topologyKey: Required value: can not be empty"
                ));
            }
            if c.label_selector.is_some() {
                return Err(format!(
                    "{at}.labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod"
                ));
            }
            if defaults.iter().any(|d| {
                d.topology_key == c.topology_key && d.when_unsatisfiable == c.when_unsatisfiable
            }) {
                return Err(format!(
                    "{at}: Duplicate value: {{{}, {:?}}}",
                    c.topology_key, c.when_unsatisfiable
                ));
            }
            defaults.push(TopologySpreadConstraint {
                max_skew: c.max_skew,
                topology_key: c.topology_key,
                when_unsatisfiable: c.when_unsatisfiable,
                label_selector: None,
                min_domains: c.min_domains,
                node_affinity_policy: c.node_affinity_policy.unwrap_or(InclusionPolicy::Honor),
                node_taints_policy: c.node_taints_policy.unwrap_or(InclusionPolicy::Ignore),
                match_label_keys: c.match_label_keys,
            });
        }
        let system_defaulted = args.defaulting_type == DefaultingType::System;
        if system_defaulted {
            defaults = vec![system_default(3, HOSTNAME), system_default(5, ZONE)];
        }
        Ok(PodTopologySpread {
            defaults,
            system_defaulted,
        })
    }
}

impl Default for PodTopologySpread {
    fn default() -> Self {
        PodTopologySpread::new(PodTopologySpreadArgs::default()).expect("valid defaults")
    }
}

/// Which placed pods a constraint counts.
#[derive(Clone)]
enum Selects {
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
    /// pods of the incoming pod's namespace `ns`).
    fn counts(&self, snap: &Snapshot, ns: Sym, q: PodId) -> bool {
        snap.pods.namespace[q as usize] == ns
            && match self {
                Selects::Nothing => false,
                Selects::Labels(sel) => sel.matches(&snap.pods.labels[q as usize]),
                // The candidates are the controller's pods.
                Selects::SameController => true,
            }
    }
}

/// A constraint of the incoming pod, interned.
struct Constraint {
    max_skew: i64,
    /// `None`: no node has the key.
    key: Option<Sym>,
    /// The nodes' domains of the key.
    topology: Arc<Topology>,
    /// `kubernetes.io/hostname`: scored per node.
    hostname: bool,
    /// Index into [`Constraints::selectors`].
    selector: usize,
    min_domains: i64,
    honor_affinity: bool,
    honor_taints: bool,
}

/// The incoming pod's constraints of one kind, with their distinct selectors: a zone and a
/// hostname constraint usually share one, and each placed pod is matched once per selector.
struct Constraints {
    list: Vec<Constraint>,
    selectors: Vec<Selects>,
}

/// Controllers whose pods get default constraints (the ones upstream reads selectors from).
fn spread_by_default(snap: &Snapshot, p: PodId) -> bool {
    snap.pods.owner[p as usize].as_ref().is_some_and(|o| {
        matches!(
            snap.symbols.resolve(o.kind),
            "ReplicaSet" | "StatefulSet" | "ReplicationController"
        )
    })
}

impl PodTopologySpread {
    /// The pod's constraints with `action` (upstream `filterTopologySpreadConstraints`), or the
    /// default ones when the pod has none at all (`buildDefaultConstraints`).
    ///
    /// A pod's own constraints are kept for the next replica of its controller (interning the
    /// selectors is most of the cost), when that replica's are equal.
    fn constraints(
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
    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Calls `f(selector, node)` for each placed pod a selector counts (upstream
    /// `countPodsMatchSelector`: pods of the incoming pod's namespace; an empty selector counts
    /// nothing), reading only the index's candidates.
    fn for_each_counted(&self, cx: &Cycle, index: &PodIndex, mut f: impl FnMut(usize, NodeId)) {
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
    fn matches_self(&self, c: &Constraint, snap: &Snapshot, p: PodId) -> bool {
        match &self.selectors[c.selector] {
            Selects::Nothing => false,
            Selects::Labels(s) => s.matches(&snap.pods.labels[p as usize]),
            Selects::SameController => true,
        }
    }
}

impl Constraint {
    /// Node `n`'s value of the key, if it has the key.
    fn value(&self, snap: &Snapshot, n: NodeId) -> Option<Sym> {
        snap.node_label_sym(n, self.key?)
    }

    /// Node `n`'s domain (numbered by [`Topology`]), if it has the key.
    fn domain(&self, n: NodeId) -> Option<u32> {
        self.topology.domain(n)
    }
}

fn has_all_keys(n: NodeId, constraints: &[Constraint]) -> bool {
    constraints.iter().all(|c| c.domain(n).is_some())
}

/// Whether a node counts for a constraint under its inclusion policies: it passes the pod's
/// node affinity and taints (`matchNodeInclusionPolicies`).
struct Inclusion<'a> {
    cx: &'a Cycle<'a>,
    /// Per node, the pod's nodeSelector and required node affinity; `None`: it has none.
    admitted: Option<Arc<Vec<bool>>>,
}

impl<'a> Inclusion<'a> {
    fn new(cx: &'a Cycle<'a>, index: &PodIndex) -> Self {
        Inclusion {
            cx,
            admitted: index.node_affinity(cx.snap, cx.pod),
        }
    }

    fn includes(&self, c: &Constraint, n: NodeId) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Filter

const MISSING_LABEL: u32 = 0;
const SKEW: u32 = 1;

struct Domains {
    /// Matching placed pods per domain (by number); only eligible domains count any.
    counts: Vec<u32>,
    /// The global minimum, 0 while there are fewer domains than `minDomains`.
    min: i64,
    self_match: i64,
}

struct FilterState {
    constraints: Arc<Constraints>,
    domains: Vec<Domains>,
}

impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn pre_filter(&self, cx: &Cycle) -> PreFilter {
        let snap = cx.snap;
        let index = cx.state.pod_index();
        let constraints = self.constraints(snap, &index, cx.pod, WhenUnsatisfiable::DoNotSchedule);
        if constraints.is_empty() {
            return PreFilter::Skip;
        }
        let list = &constraints.list;
        let inclusion = Inclusion::new(cx, &index);
        // Every eligible node's value is a domain, even without matching pods. Which nodes are
        // eligible depends on the keys and the node constraints honoured, shared by replicas: the
        // index keeps the result, unless tolerations decide (rare).
        let eligible_domains = || {
            let mut domains = vec![IdSet::default(); list.len()];
            for n in 0..snap.nodes.len() as NodeId {
                if !has_all_keys(n, list) {
                    continue;
                }
                for (c, domains) in list.iter().zip(domains.iter_mut()) {
                    if inclusion.includes(c, n) {
                        domains.insert(c.value(snap, n).expect("has all keys"));
                    }
                }
            }
            domains
        };
        let all_domains = if list.iter().any(|c| c.honor_taints) {
            Arc::new(eligible_domains())
        } else {
            let honoured: Vec<(Option<Sym>, bool)> =
                list.iter().map(|c| (c.key, c.honor_affinity)).collect();
            let key = (honoured, index.node_constraints(snap, cx.pod));
            index.spread_domains(key, eligible_domains)
        };
        // Matching pods per domain, and how many domains have some.
        let mut counts: Vec<(Vec<u32>, usize)> = list
            .iter()
            .map(|c| (vec![0; c.topology.domains()], 0))
            .collect();
        constraints.for_each_counted(cx, &index, |selector, n| {
            // Nodes without every key are in no domain.
            if !has_all_keys(n, list) {
                return;
            }
            for (c, (counts, with_pods)) in list.iter().zip(counts.iter_mut()) {
                if c.selector == selector && inclusion.includes(c, n) {
                    let count = &mut counts[c.domain(n).expect("has all keys") as usize];
                    *with_pods += usize::from(*count == 0);
                    *count += 1;
                }
            }
        });
        let domains = list
            .iter()
            .zip(counts)
            .zip(all_domains.iter())
            .map(|((c, (counts, with_pods)), all)| {
                // Only eligible domains count pods, so those with some are eligible ones; a
                // hostname key has thousands, so they are looked at only when all have pods.
                let min = if (all.len() as i64) < c.min_domains || with_pods < all.len() {
                    // Too few domains, or one without matching pods.
                    0
                } else {
                    let with_pods = counts.iter().copied().filter(|&k| k > 0);
                    with_pods.min().map_or(0, i64::from)
                };
                Domains {
                    min,
                    self_match: i64::from(constraints.matches_self(c, snap, cx.pod)),
                    counts,
                }
            })
            .collect();
        PreFilter::Run(Some(Arc::new(FilterState {
            constraints,
            domains,
        })))
    }

    fn filter(&self, _: &Cycle, data: &CycleData, node: NodeId) -> Result<(), u32> {
        let s = data
            .as_ref()
            .and_then(|d| d.downcast_ref::<FilterState>())
            .expect("pre_filter");
        for (c, d) in s.constraints.list.iter().zip(&s.domains) {
            let Some(domain) = c.domain(node) else {
                return Err(MISSING_LABEL);
            };
            let here = i64::from(d.counts[domain as usize]);
            if here + d.self_match - d.min > c.max_skew {
                return Err(SKEW);
            }
        }
        Ok(())
    }

    fn reasons(&self, _: &Cycle, _: &CycleData, _: NodeId, code: u32, out: &mut Vec<Reason>) {
        out.push(match code {
            MISSING_LABEL => {
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .into()
            }
            _ => "node(s) didn't match pod topology spread constraints".into(),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Score

/// The feasible nodes' raw scores by class: the nodes of a class have one raw score (see
/// [`class_value`]), so NormalizeScore divides once per class, not once per node.
struct ScoreState {
    /// The feasible nodes, in the order NormalizeScore sees their scores.
    feasible: Vec<NodeId>,
    /// Per feasible node, its class; [`IGNORED`] for a node without some topology key (not
    /// scored: 0).
    class: Vec<u32>,
    /// Per class, the raw score (0 for [`IGNORED`]).
    raw: Vec<i64>,
}

/// The class of the feasible nodes that are not scored.
const IGNORED: u32 = 0;

impl ScoreState {
    fn raw(&self, node: NodeId) -> i64 {
        let i = self.feasible.iter().position(|&n| n == node);
        i.map_or(0, |i| self.raw[self.class[i] as usize])
    }

    /// Where `nodes` start in the feasible list, if they are a run of it: the framework scores
    /// the whole list, or chunks of it when it splits the work over threads.
    fn run_start(&self, nodes: &[NodeId]) -> Option<usize> {
        let first = *nodes.first()?;
        let at = self.feasible.iter().position(|&n| n == first)?;
        self.feasible[at..].starts_with(nodes).then_some(at)
    }

    /// Per class, its normalised score (upstream's NormalizeScore, see [`normalize_reversed`]).
    fn normalized(&self) -> Vec<i64> {
        let scored = &self.raw[IGNORED as usize + 1..];
        let scale = ReversedScale::over(scored.iter().copied());
        std::iter::once(0)
            .chain(scored.iter().map(|&s| scale.apply(s)))
            .collect()
    }
}

/// Upstream `topologyNormalizingWeight`.
pub fn topology_normalizing_weight(domains: usize) -> f64 {
    ((domains + 2) as f64).ln()
}

/// Upstream `scoreForCount`: `maxSkew − 1` waters down the differences between domains, so larger
/// skews are tolerated.
pub fn score_for_count(count: i64, max_skew: i64, weight: f64) -> f64 {
    count as f64 * weight + (max_skew - 1) as f64
}

/// `x.round() as i64` (halves away from zero) without a call: baseline x86-64 has no rounding
/// instruction, so `f64::round` is a libm call, once per scored node. The truncation `t` is an
/// integer `f64` represents, so the fraction `x − t` is exact; beyond the range of `i64` both
/// saturate. Without branches: which way a score rounds is as good as random.
fn round_to_i64(x: f64) -> i64 {
    let t = x as i64;
    let fraction = x - t as f64;
    t.saturating_add(i64::from(fraction >= 0.5) - i64::from(fraction <= -0.5))
}

/// Per-node counts reused from cycle to cycle: an entry counts only when stamped with the current
/// round, so a round costs the nodes it touches, not a cleared array of every node.
#[derive(Default)]
struct NodeTally {
    round: u32,
    /// Per node: (round of the last count, count).
    entries: Vec<(u32, u32)>,
}

impl NodeTally {
    fn start(&mut self, nodes: usize) {
        if self.round == u32::MAX {
            self.entries.fill((0, 0));
            self.round = 0;
        }
        self.round += 1;
        if self.entries.len() < nodes {
            self.entries.resize(nodes, (0, 0));
        }
    }

    fn add(&mut self, n: NodeId) {
        let (round, count) = &mut self.entries[n as usize];
        if *round != self.round {
            *round = self.round;
            *count = 0;
        }
        *count += 1;
    }

    fn get(&self, n: NodeId) -> u32 {
        let (round, count) = self.entries[n as usize];
        if round == self.round {
            count
        } else {
            0
        }
    }
}

thread_local! {
    /// Per thread, as PreScore runs on whichever thread schedules the pod.
    static TALLY: RefCell<NodeTally> = RefCell::new(NodeTally::default());
}

/// For each node of `at`, how often it occurs in `nodes`.
fn occurrences(nodes: &[NodeId], at: &[NodeId], all_nodes: usize) -> Vec<i64> {
    if nodes.is_empty() {
        return vec![0; at.len()];
    }
    TALLY.with_borrow_mut(|tally| {
        tally.start(all_nodes);
        for &n in nodes {
            tally.add(n);
        }
        at.iter().map(|&n| i64::from(tally.get(n))).collect()
    })
}

/// A `ScheduleAnyway` constraint's term of the raw score, `count × weight + maxSkew − 1`, where
/// the feasible nodes are: computed once per domain rather than once per node.
enum Terms {
    /// Hostname: the matching pods on each feasible node (by position), and the weight; the
    /// term is worked out per node, as most nodes share the one of count 0.
    PerNode { counts: Vec<i64>, weight: f64 },
    /// Per scored domain (by number, see [`Topology::scored_domain`]); those of no scored
    /// feasible node are never read.
    PerDomain(Vec<f64>),
}

impl Terms {
    /// Constraint `c`'s term for the feasible node at position `i`, in `domain`.
    fn at(&self, c: &Constraint, i: usize, domain: u32) -> f64 {
        match self {
            Terms::PerNode { counts, weight } => score_for_count(counts[i], c.max_skew, *weight),
            Terms::PerDomain(of) => of[domain as usize],
        }
    }
}

/// The raw score of the feasible node `n` at position `i`: the rounded sum of the terms of the
/// constraints whose key it has, added in the constraints' order as upstream does.
fn node_score(list: &[Constraint], terms: &[Terms], i: usize, n: NodeId) -> i64 {
    let mut score = 0.0;
    for (c, terms) in list.iter().zip(terms) {
        if let Some(domain) = c.domain(n) {
            score += terms.at(c, i, domain);
        }
    }
    round_to_i64(score)
}

/// Which of a constraint's values decide the score of a node without pods it counts: the domain
/// (or none) for a per-domain constraint, only whether the node has the key for a hostname one.
fn class_value(c: &Constraint, n: NodeId) -> usize {
    let domain = c.domain(n);
    if c.hostname {
        usize::from(domain.is_some())
    } else {
        domain.map_or(c.topology.domains(), |d| d as usize)
    }
}

/// How many values [`class_value`] takes: 1 when it needs no look-up, as for a hostname key
/// every node has.
fn radix(c: &Constraint) -> usize {
    match (c.hostname, c.topology.complete()) {
        (true, true) => 1,
        (true, false) => 2,
        (false, _) => c.topology.domains() + 1,
    }
}

/// A feasible node whose score is its own: it holds pods a hostname constraint counts.
const OWN_SCORE: usize = usize::MAX;

/// Per feasible node, its class, numbered in order of first sight from 1: nodes of one class
/// (equal [`class_value`]s for every constraint) that hold no counted pods have equal terms, so
/// the same raw score; a node that holds some, or every node when there are more classes than
/// nodes, is a class of its own. And per class, its first node (none for 0, which is unused).
/// Built a constraint at a time, as tight loops over the few hundred nodes.
fn classify(
    list: &[Constraint],
    on_feasible: &[Option<Vec<i64>>],
    nodes: &[NodeId],
) -> (Vec<u32>, Vec<usize>) {
    let mut seen = vec![usize::MAX];
    let Some(classes) = classes(list, nodes.len()) else {
        seen.extend(0..nodes.len());
        return ((1..=nodes.len() as u32).collect(), seen);
    };
    // Written, not allocated zeroed: the allocator's zeroed path (an aligned allocation, then
    // its own memset) cost more, per cycle, than writing the zeros.
    let mut keys: Vec<usize> = nodes.iter().map(|_| 0).collect();
    for c in list.iter().filter(|c| radix(c) > 1) {
        let radix = radix(c);
        // (Below `classes`, so no product overflows.)
        for (key, &n) in keys.iter_mut().zip(nodes) {
            *key = key.wrapping_mul(radix).wrapping_add(class_value(c, n));
        }
    }
    for counts in on_feasible.iter().flatten() {
        for (key, &count) in keys.iter_mut().zip(counts) {
            if count > 0 {
                *key = OWN_SCORE;
            }
        }
    }
    let mut numbered = vec![0u32; classes];
    let class = keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let slot = (key != OWN_SCORE).then(|| &mut numbered[key]);
            match slot {
                Some(&mut id) if id != 0 => id,
                slot => {
                    let id = seen.len() as u32;
                    seen.push(i);
                    if let Some(slot) = slot {
                        *slot = id;
                    }
                    id
                }
            }
        })
        .collect();
    (class, seen)
}

/// How many classes of [`class_value`]s there are, if no more than `limit`.
fn classes(list: &[Constraint], limit: usize) -> Option<usize> {
    list.iter()
        .try_fold(1usize, |k, c| k.checked_mul(radix(c)))
        .filter(|&k| k <= limit)
}

impl ScorePlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }

    fn pre_score(&self, cx: &Cycle, nodes: &[NodeId]) -> PreScore {
        let snap = cx.snap;
        if snap.nodes.is_empty() {
            return PreScore::Skip;
        }
        let index = cx.state.pod_index();
        let constraints = self.constraints(snap, &index, cx.pod, WhenUnsatisfiable::ScheduleAnyway);
        if constraints.is_empty() {
            return PreScore::Skip;
        }
        let list = &constraints.list;
        // With the system defaults a node without a zone label is still spread by hostname.
        let require_all = !snap.pods.spread[cx.p()].is_empty() || !self.system_defaulted;
        // Count the matching pods per scored domain (those of no scored node are never read),
        // and for hostname constraints note the nodes of all of them.
        let inclusion = Inclusion::new(cx, &index);
        let mut per_domain: Vec<Vec<i64>> = list
            .iter()
            .map(|c| match c.hostname {
                true => Vec::new(),
                false => vec![0; c.topology.scored_domains()],
            })
            .collect();
        let mut on_nodes: Vec<Vec<NodeId>> = vec![Vec::new(); list.len()];
        constraints.for_each_counted(cx, &index, |selector, n| {
            for (j, c) in list.iter().enumerate() {
                if c.selector != selector {
                    continue;
                }
                if c.hostname {
                    on_nodes[j].push(n);
                    continue;
                }
                if (require_all && !has_all_keys(n, list)) || !inclusion.includes(c, n) {
                    continue;
                }
                per_domain[j][c.topology.scored_domain(n) as usize] += 1;
            }
        });
        let on_feasible: Vec<Option<Vec<i64>>> = list
            .iter()
            .zip(&on_nodes)
            .map(|(c, on)| c.hostname.then(|| occurrences(on, nodes, snap.nodes.len())))
            .collect();

        // Each feasible node's class, with a node of each. Whether a node is scored, and its
        // domains, follow from its class.
        let (class, seen) = classify(list, &on_feasible, nodes);
        let mut in_domain: Vec<Vec<bool>> =
            per_domain.iter().map(|d| vec![false; d.len()]).collect();
        let mut scored_class = vec![IGNORED; seen.len()];
        let mut scored_seen = vec![usize::MAX];
        for (id, &i) in seen.iter().enumerate().skip(1) {
            let n = nodes[i];
            if require_all && !has_all_keys(n, list) {
                continue;
            }
            scored_class[id] = scored_seen.len() as u32;
            scored_seen.push(i);
            for (c, in_domain) in list.iter().zip(in_domain.iter_mut()) {
                if !c.hostname {
                    in_domain[c.topology.scored_domain(n) as usize] = true;
                }
            }
        }
        let (class, scored) = if scored_seen.len() == seen.len() {
            // Every class is scored, and numbered as it was.
            let scored = class.len();
            (class, scored)
        } else {
            let class: Vec<u32> = class.iter().map(|&c| scored_class[c as usize]).collect();
            let scored = class.iter().filter(|&&c| c != IGNORED).count();
            (class, scored)
        };
        let terms: Vec<Terms> = list
            .iter()
            .zip(per_domain)
            .zip(on_feasible)
            .zip(&in_domain)
            .map(
                |(((c, per_domain), on_feasible), in_domain)| match on_feasible {
                    Some(counts) => Terms::PerNode {
                        counts,
                        weight: topology_normalizing_weight(scored),
                    },
                    None => {
                        let domains = in_domain.iter().filter(|&&d| d).count();
                        let weight = topology_normalizing_weight(domains);
                        // (Collected in place: the terms take over the counts' memory.)
                        let term = |count: i64| score_for_count(count, c.max_skew, weight);
                        Terms::PerDomain(per_domain.into_iter().map(term).collect())
                    }
                },
            )
            .collect();
        let raw = std::iter::once(0)
            .chain(
                scored_seen[1..]
                    .iter()
                    .map(|&i| node_score(list, &terms, i, nodes[i])),
            )
            .collect();
        PreScore::Run(Some(Arc::new(ScoreState {
            feasible: nodes.to_vec(),
            class,
            raw,
        })))
    }

    fn score(&self, _: &Cycle, data: &CycleData, node: NodeId) -> i64 {
        score_state(data).raw(node)
    }

    fn score_all(&self, _: &Cycle, data: &CycleData, nodes: &[NodeId], out: &mut [i64]) {
        let s = score_state(data);
        match s.run_start(nodes) {
            Some(at) => {
                for (o, &c) in out.iter_mut().zip(&s.class[at..]) {
                    *o = s.raw[c as usize];
                }
            }
            None => {
                for (o, &n) in out.iter_mut().zip(nodes) {
                    *o = s.raw(n);
                }
            }
        }
    }

    fn normalize(&self, _: &Cycle, data: &CycleData, scores: &mut [i64]) {
        let ignored: Vec<bool> = score_state(data)
            .class
            .iter()
            .map(|&c| c == IGNORED)
            .collect();
        normalize_reversed(scores, &ignored);
    }

    fn add_weighted(
        &self,
        cx: &Cycle,
        data: &CycleData,
        nodes: &[NodeId],
        weight: i64,
        totals: &mut [i64],
        buf: &mut Vec<i64>,
    ) {
        let s = score_state(data);
        if s.feasible != nodes {
            return add_weighted_scores(self, cx, data, nodes, weight, totals, buf);
        }
        let normalized = s.normalized();
        for (t, &c) in totals.iter_mut().zip(&s.class) {
            *t += weight * normalized[c as usize];
        }
    }
}

fn score_state(data: &CycleData) -> &ScoreState {
    data.as_ref()
        .and_then(|d| d.downcast_ref::<ScoreState>())
        .expect("pre_score")
}

/// Upstream's PodTopologySpread NormalizeScore: fewer matching pods score higher,
/// `100 × (max + min − s) / max` over the scored nodes; ignored nodes get 0, and all 100 when
/// every score is 0.
pub fn normalize_reversed(scores: &mut [i64], ignored: &[bool]) {
    let scale = ReversedScale::over(
        scores
            .iter()
            .zip(ignored)
            .filter(|&(_, &skip)| !skip)
            .map(|(&s, _)| s),
    );
    // The raw scores are a few distinct values (one per domain, and per count on a node): when
    // they span fewer values than there are nodes, each is divided once.
    let span = scale
        .max
        .checked_sub(scale.min)
        .and_then(|d| usize::try_from(d).ok());
    let quotients: Vec<i64> = match span {
        Some(span) if scale.max > 0 && span < scores.len() => {
            (scale.min..=scale.max).map(|s| scale.apply(s)).collect()
        }
        _ => Vec::new(),
    };
    for (s, &skip) in scores.iter_mut().zip(ignored) {
        *s = if skip {
            0
        } else if quotients.is_empty() {
            scale.apply(*s)
        } else {
            quotients[(*s - scale.min) as usize]
        };
    }
}

/// NormalizeScore's map from a raw score to `100 × (max + min − s) / max`, with min and max over
/// the scored values; all 100 when every score is 0.
struct ReversedScale {
    min: i64,
    max: i64,
    divider: Divider,
}

impl ReversedScale {
    fn over(scored: impl Iterator<Item = i64>) -> Self {
        let (min, max) = scored.fold((i64::MAX, 0), |(min, max), s| (min.min(s), max.max(s)));
        ReversedScale {
            min,
            max,
            divider: Divider::new(max.max(1)),
        }
    }

    fn apply(&self, s: i64) -> i64 {
        if self.max == 0 {
            MAX_NODE_SCORE
        } else {
            self.divider.div(MAX_NODE_SCORE * (self.max + self.min - s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(json: &str) -> Result<PodTopologySpread, String> {
        let args: PodTopologySpreadArgs = serde_json::from_str(json).map_err(|e| e.to_string())?;
        PodTopologySpread::new(args)
    }

    #[test]
    fn system_defaults_and_list() {
        let p = build("{}").unwrap();
        assert!(p.system_defaulted);
        let keys: Vec<(&str, i32)> = p
            .defaults
            .iter()
            .map(|c| (c.topology_key.as_str(), c.max_skew))
            .collect();
        assert_eq!(keys, [(HOSTNAME, 3), (ZONE, 5)]);
        let p = build(
            r#"{"defaultingType":"List","defaultConstraints":[
                {"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule"}]}"#,
        )
        .unwrap();
        assert!(!p.system_defaulted);
        assert_eq!(p.defaults.len(), 1);
        assert_eq!(p.defaults[0].node_taints_policy, InclusionPolicy::Ignore);
        let p = build(r#"{"defaultingType":"List"}"#).unwrap();
        assert!(p.defaults.is_empty());
    }

    #[test]
    fn args_are_validated_like_upstream() {
        let err = |j: &str| build(j).err().unwrap();
        assert!(err(r#"{"defaultConstraints":[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#)
            .contains("when .defaultConstraints are not empty"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":0,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#)
            .contains("defaultConstraints[0].maxSkew"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":1,"whenUnsatisfiable":"ScheduleAnyway"}]}"#)
            .contains("topologyKey: Required value"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{}}]}"#)
            .contains("must not define a selector"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[
                {"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"},
                {"maxSkew":2,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]}"#)
        .contains("defaultConstraints[1]: Duplicate value"));
        assert!(err(r#"{"defaultingType":"Magic"}"#).contains("unknown variant `Magic`"));
        assert!(err(r#"{"defaultConstraint":[]}"#).contains("unknown field `defaultConstraint`"));
        assert!(err(r#"{"defaultingType":"List","defaultConstraints":[{"maxSkew":1,"topologyKey":"z","whenUnsatisfiable":"ScheduleAnyway","skew":2}]}"#)
            .contains("unknown field `skew`"));
    }

    #[test]
    fn score_formula() {
        // 3 zones: weight ln(5) = 1.609; 2 pods and maxSkew 1 -> 3.219.
        let w = topology_normalizing_weight(3);
        assert!((w - 5f64.ln()).abs() < 1e-12);
        assert!((score_for_count(2, 1, w) - 2.0 * 5f64.ln()).abs() < 1e-12);
        assert_eq!(score_for_count(0, 5, w), 4.0);
    }

    #[test]
    fn rounding_matches_f64_round() {
        let halves = [
            0.5,
            1.5,
            2.5,
            -0.5,
            -2.5,
            0.49999999999999994,
            4503599627370495.5,
        ];
        let others = [
            0.0,
            -0.0,
            3.2,
            7.7,
            -7.7,
            1e15 + 0.25,
            9e18,
            1e19,
            -1e19,
            f64::NAN,
        ];
        let others = others.into_iter().chain([f64::INFINITY, f64::NEG_INFINITY]);
        for x in halves.into_iter().chain(others) {
            assert_eq!(round_to_i64(x), x.round() as i64, "{x}");
        }
    }

    #[test]
    fn reversed_normalisation_like_upstream() {
        let mut s = [3, 1, 0, 9];
        normalize_reversed(&mut s, &[false, false, false, true]);
        // max 3, min 0: 100*(3+0-3)/3 = 0, 100*2/3 = 66, 100.
        assert_eq!(s, [0, 66, 100, 0]);
        let mut s = [0, 0];
        normalize_reversed(&mut s, &[false, false]);
        assert_eq!(s, [100, 100]);
        let mut s = [4, 6];
        normalize_reversed(&mut s, &[false, false]);
        // min 4 lifts every score: 100*(6+4-4)/6 = 100, 100*(6+4-6)/6 = 66.
        assert_eq!(s, [100, 66]);
    }
}
