//! What a plan may spend: disruption budgets per wave, and the caller's caps per node, namespace,
//! workload, wave and in total.

use crate::hash::IdMap;
use crate::intern::Sym;
use crate::snapshot::{NodeId, PodId, Snapshot};

/// Caps on evictions. `None`: no cap.
///
/// The first three count over the whole plan, as the descheduler's `maxNoOfPodsToEvictPerNode`,
/// `maxNoOfPodsToEvictPerNamespace` and `maxNoOfPodsToEvictTotal` do; the last two count within
/// one wave, i.e. pods away at the same time (Koordinator's `maxUnavailablePerWorkload`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Evictions from one node.
    pub max_per_node: Option<u32>,
    /// Evictions in one namespace.
    pub max_per_namespace: Option<u32>,
    /// Evictions in all.
    pub max_total: Option<u32>,
    /// Evictions in one wave.
    pub max_per_wave: Option<u32>,
    /// Evictions of one workload (the pods of one controller) in one wave.
    pub max_unavailable_per_workload: Option<u32>,
}

/// A cap that stops an eviction for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    PerNode,
    PerNamespace,
    Total,
}

impl Cap {
    pub fn as_str(self) -> &'static str {
        match self {
            Cap::PerNode => "max_per_node",
            Cap::PerNamespace => "max_per_namespace",
            Cap::Total => "max_total",
        }
    }
}

/// Whether an eviction may happen in the wave being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Now,
    /// A per-wave allowance is spent: a later wave.
    Later,
    Never(Cap),
}

pub(super) struct Ledger {
    limits: Limits,
    /// Per pod: the disruption budget covering it (pods covered by several are never evicted).
    budget_of: Vec<Option<u32>>,
    /// Per budget: evictions it allows at a time.
    allowed: Vec<u32>,
    /// Per pod: its workload, numbered (`u32::MAX`: none).
    workload_of: Vec<u32>,
    per_node: Vec<u32>,
    per_namespace: IdMap<Sym, u32>,
    total: u32,
    // This wave's spending.
    wave: u32,
    wave_budget: Vec<u32>,
    wave_workload: IdMap<u32, u32>,
}

impl Ledger {
    pub(super) fn new(
        snap: &Snapshot,
        limits: Limits,
        budget_of: Vec<Option<u32>>,
        allowed: Vec<u32>,
    ) -> Self {
        let mut workloads: IdMap<&str, u32> = IdMap::default();
        let workload_of = snap
            .pods
            .owner
            .iter()
            .map(|o| match o {
                Some(o) => {
                    let next = workloads.len() as u32;
                    *workloads.entry(o.uid.as_str()).or_insert(next)
                }
                None => u32::MAX,
            })
            .collect();
        Ledger {
            limits,
            budget_of,
            wave_budget: vec![0; allowed.len()],
            allowed,
            workload_of,
            per_node: vec![0; snap.nodes.len()],
            per_namespace: IdMap::default(),
            total: 0,
            wave: 0,
            wave_workload: IdMap::default(),
        }
    }

    pub(super) fn new_wave(&mut self) {
        self.wave = 0;
        self.wave_budget.iter_mut().for_each(|b| *b = 0);
        self.wave_workload.clear();
    }

    /// Whether pod `p` may be evicted from `from` now.
    pub(super) fn check(&self, snap: &Snapshot, p: PodId, from: NodeId) -> Verdict {
        let l = &self.limits;
        let over = |cap: Option<u32>, used: u32| cap.is_some_and(|c| used >= c);
        if over(l.max_total, self.total) {
            return Verdict::Never(Cap::Total);
        }
        if over(l.max_per_node, self.per_node[from as usize]) {
            return Verdict::Never(Cap::PerNode);
        }
        let ns = snap.pods.namespace[p as usize];
        if over(
            l.max_per_namespace,
            self.per_namespace.get(&ns).copied().unwrap_or(0),
        ) {
            return Verdict::Never(Cap::PerNamespace);
        }
        if over(l.max_per_wave, self.wave) {
            return Verdict::Later;
        }
        let w = self.workload_of[p as usize];
        if w != u32::MAX
            && over(
                l.max_unavailable_per_workload,
                self.wave_workload.get(&w).copied().unwrap_or(0),
            )
        {
            return Verdict::Later;
        }
        if let Some(b) = self.budget_of[p as usize] {
            if self.wave_budget[b as usize] >= self.allowed[b as usize] {
                return Verdict::Later;
            }
        }
        Verdict::Now
    }

    /// Records the eviction of `p` from `from`; returns the budget it spent and what that budget
    /// still allows in this wave.
    pub(super) fn spend(&mut self, snap: &Snapshot, p: PodId, from: NodeId) -> Option<(u32, u32)> {
        self.total += 1;
        self.wave += 1;
        self.per_node[from as usize] += 1;
        *self
            .per_namespace
            .entry(snap.pods.namespace[p as usize])
            .or_insert(0) += 1;
        let w = self.workload_of[p as usize];
        if w != u32::MAX {
            *self.wave_workload.entry(w).or_insert(0) += 1;
        }
        self.budget_of[p as usize].map(|b| {
            let spent = &mut self.wave_budget[b as usize];
            *spent += 1;
            (b, self.allowed[b as usize] - *spent)
        })
    }
}
