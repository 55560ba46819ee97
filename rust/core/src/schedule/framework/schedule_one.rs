//! Schedule one pod (upstream's `schedule_one.go`): the scheduler that keeps state between cycles,
//! its cycle (PreFilter, the walk for feasible nodes, scoring) and selectHost.

use std::collections::BTreeMap;

use super::demand_cache::{DemandCache, Refresh};
use super::statics::{statics_of, Statics};
use super::{Cycle, CycleData, FitError, PreFilter, PreScore, Profile, Rng, ScorePlugin};
use crate::hash::IdMap;
use crate::schedule::cached_walk;
use crate::snapshot::NodeId;

/// How many feasible nodes to find before scoring (`numFeasibleNodesToFind`).
pub fn feasible_nodes_to_find(all: usize, percentage: Option<u32>) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if all < MIN_FEASIBLE {
        return all;
    }
    let pct = match percentage {
        Some(p) if p >= 100 => return all,
        Some(p) if p > 0 => p as usize,
        // Adaptive: 50% for small clusters, shrinking by 1% per 125 nodes, never below 5%.
        _ => (50usize.saturating_sub(all / 125)).max(5),
    };
    (all * pct / 100).max(MIN_FEASIBLE)
}

/// How the scheduler chooses among the nodes with the highest total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TieBreak {
    /// Uniformly at random among the tied nodes (with the odds of selectHost's reservoir sampling).
    #[default]
    Random,
    /// The node with the lowest `rank[node]`. The FGD paper's simulator runs a kube-scheduler fork
    /// whose selectHost takes the smallest node name, names prefixed with a seeded permutation:
    /// a fixed random node order, which packs where random tie-breaking spreads.
    Rank(Vec<u32>),
}

/// Places pods one cycle at a time with one profile, keeping kube-scheduler's state between cycles
/// (the rotating start of the node search, the tie-breaking generator) and the static plugins'
/// results per group of pods.
pub struct Scheduler<'p> {
    pub profile: &'p Profile,
    pub rng: Rng,
    /// How equal totals are broken (default: at random, as selectHost).
    pub tie_break: TieBreak,
    /// Threads the work over all nodes is split over (1: none): the static plugins of each new
    /// group of pods, and the FitError reasons of an unschedulable pod. A cycle's own walk and
    /// scoring stay on one thread: a few microseconds of work do not pay for a hand-off. Run inside
    /// a rayon pool of that size; the result does not depend on it.
    pub threads: usize,
    /// Whether a FitError counts the reasons over every node (default); off, it carries none —
    /// for replays that only need to know that a pod did not fit.
    pub explain: bool,
    /// By group: groups are numbered densely from 0 (see [`crate::schedule::constraint_groups`]).
    pub(super) statics: Vec<Option<Statics>>,
    pub(super) demands: Vec<DemandCache>,
    /// The dynamic filters that run at each node walked (kept to reuse its memory).
    pub(super) other: Vec<usize>,
    pub(super) refresh: Refresh,
    pub(super) stretches: Vec<cached_walk::Stretch>,
    /// Demand caches by their demand's fingerprint.
    pub(super) demand_index: IdMap<u64, usize>,
    pub(super) cycles: u64,
    /// The [`ClusterState::id`](crate::schedule::state::ClusterState::id) the kept results belong
    /// to.
    pub(super) state: Option<u64>,
}

impl<'p> Scheduler<'p> {
    pub fn new(profile: &'p Profile, seed: u64) -> Self {
        Scheduler {
            profile,
            rng: Rng::new(seed),
            tie_break: TieBreak::Random,
            explain: true,
            threads: 1,
            statics: Default::default(),
            demands: Vec::new(),
            other: Vec::new(),
            refresh: Refresh::default(),
            stretches: Vec::new(),
            demand_index: Default::default(),
            cycles: 0,
            state: None,
        }
    }

    /// Filters, scores and selects a node for `cx.pod`; `group` identifies the pods that share its
    /// node constraints (see [`FilterPlugin::is_static`]), numbered densely from 0 as
    /// [`crate::schedule::constraint_groups`] numbers them.
    ///
    /// [`FilterPlugin::is_static`]: super::FilterPlugin::is_static
    ///
    /// `next_start` is where the search for feasible nodes starts (upstream's
    /// `nextStartNodeIndex`, one per scheduler, shared by its profiles); the cycle advances it.
    pub fn place(
        &mut self,
        cx: &Cycle,
        group: u32,
        next_start: &mut usize,
    ) -> Result<NodeId, FitError> {
        let n_nodes = cx.snap.nodes.len();
        let profile = self.profile;
        let (demand, filter_data) = self.pre_filters(cx)?;
        let threads = self.threads;
        let statics = statics_of(&mut self.statics, profile, cx, group, threads);
        // Without score plugins there is nothing to compare: upstream takes the first feasible node.
        let want = if profile.scores.is_empty() {
            1
        } else {
            feasible_nodes_to_find(n_nodes, profile.percentage_of_nodes_to_score)
        };
        // The dynamic filters that run on every node walked (node-local ones run through the
        // demand's cache).
        let mut other = std::mem::take(&mut self.other);
        other.clear();
        other.extend((0..profile.filters.len()).filter(|&i| {
            statics.filters[i].is_none()
                && filter_data[i].is_some()
                && !profile.filters[i].node_local()
        }));
        let data = |i: usize| {
            filter_data[i]
                .as_ref()
                .expect("dynamic filters that run have data")
        };
        // When every score this group gets is node-local, a node's total is final once walked, and
        // selectHost runs over the walked list as it is, with no scores to add.
        let totals_final = profile.scores.iter().enumerate().all(|(j, (s, _))| {
            is_local_score(s.as_ref()) || matches!(statics.scores[j], Some(None))
        });
        let cache = &mut self.demands[demand];
        cache.refresh(profile, cx, &mut self.refresh);
        // Walk only the nodes every static filter passes, from the rotating start. A node counts
        // as processed whichever filter rejected it, so `processed` is the distance walked in node
        // order, as upstream counts it. Caches are indexed by position: the walk streams.
        let passing = &statics.passing;
        let order = &cx.state.node_order[..];
        // Nothing to do at a node but read its total: the cached walk, which keeps no list.
        let cached = totals_final && other.is_empty() && passing.len() == n_nodes;
        let keep = if cached { 0 } else { want.min(passing.len()) };
        let mut feasible: Vec<NodeId> = Vec::with_capacity(keep);
        let mut totals: Vec<i64> = Vec::with_capacity(keep);
        let mut found = 0;
        let mut last = None;
        let mut chosen = None;
        if cached {
            let stretches = std::mem::take(&mut self.stretches);
            let walk = cached_walk::walk(&mut cache.total, *next_start, want, stretches);
            (found, last) = (walk.found, walk.last);
            if found > 0 {
                let pos = walk.choose(&cache.total, order, &mut self.rng, &self.tie_break);
                chosen = Some(order[pos]);
            }
            self.stretches = walk.into_stretches();
        } else {
            // Only nodes the static filters pass and the node-local ones do not reject.
            let kept = cache.total.as_slice();
            cached_walk::walk_bits(
                &statics.passing_bits,
                cache.total.open(),
                *next_start,
                |p| {
                    let n = order[p];
                    if !other
                        .iter()
                        .all(|&i| profile.filters[i].filter(cx, data(i), n).is_ok())
                    {
                        return false;
                    }
                    found += 1;
                    feasible.push(n);
                    totals.push(i64::from(kept[p]));
                    if found == want {
                        last = Some(p);
                        return true;
                    }
                    false
                },
            );
        }
        self.other = other;
        if found == 0 {
            if !self.explain {
                return Err(FitError {
                    nodes: n_nodes,
                    pre_filter: None,
                    reasons: BTreeMap::new(),
                    plugins: BTreeMap::new(),
                });
            }
            return Err(self.diagnose(cx, &filter_data, group, demand));
        }
        let processed = match last {
            Some(pos) => (pos + n_nodes - *next_start) % n_nodes + 1,
            None => n_nodes,
        };
        *next_start = (*next_start + processed) % n_nodes;
        if let Some(n) = chosen {
            return Ok(n);
        }
        if feasible.len() == 1 {
            return Ok(feasible[0]);
        }
        if totals_final {
            return Ok(select_host(
                &feasible,
                &totals,
                &mut self.rng,
                &self.tie_break,
            ));
        }
        let statics = self.statics[group as usize]
            .as_ref()
            .expect("place computed the group's statics");
        add_scores(
            profile,
            cx,
            &feasible,
            Some(&statics.scores),
            true,
            &mut totals,
        );
        Ok(select_host(
            &feasible,
            &totals,
            &mut self.rng,
            &self.tie_break,
        ))
    }

    /// Starts a cycle: forgets what was kept for another cluster, finds the demand's cache and
    /// runs PreFilter (node-local filters' results come from the cache). Per filter, its cycle
    /// data, or `None` when it skips the pod; `Err` when a PreFilter rejects the pod.
    pub(super) fn pre_filters(
        &mut self,
        cx: &Cycle,
    ) -> Result<(usize, Vec<Option<CycleData>>), FitError> {
        if self.state != Some(cx.state.id) {
            // Another cluster (or snapshot, numbered in other groups): nothing kept applies.
            self.state = Some(cx.state.id);
            self.statics.clear();
            self.demands.clear();
            self.demand_index.clear();
        }
        let cache = self.demand_cache(cx);
        let mut filter_data = Vec::with_capacity(self.profile.filters.len());
        for (i, f) in self.profile.filters.iter().enumerate() {
            // A static filter's verdicts are kept per group; its PreFilter can only reject the
            // pod outright (it depends on the pod alone).
            let pre = match &self.demands[cache].pre_filters[i] {
                Some(pre) => pre.clone(),
                None => f.pre_filter(cx),
            };
            if f.is_static() && !matches!(pre, PreFilter::Reject(_)) {
                filter_data.push(Some(None));
                continue;
            }
            match pre {
                PreFilter::Run(d) => filter_data.push(Some(d)),
                PreFilter::Skip => filter_data.push(None),
                PreFilter::Reject(msg) => {
                    return Err(FitError {
                        nodes: cx.snap.nodes.len(),
                        plugins: BTreeMap::from([(msg.clone(), f.name())]),
                        pre_filter: Some(msg),
                        reasons: BTreeMap::new(),
                    })
                }
            }
        }
        Ok((cache, filter_data))
    }

    /// Weighted sum of normalised plugin scores for each of `feasible` (no cached statics).
    pub fn score(&self, cx: &Cycle, feasible: &[NodeId]) -> Vec<i64> {
        let mut totals = vec![0; feasible.len()];
        add_scores(self.profile, cx, feasible, None, false, &mut totals);
        totals
    }
}

/// selectHost over the feasible nodes and their totals: the highest total; among equal ones, by
/// [`TieBreak`]. Upstream samples a reservoir, one draw per tie; one draw over all the tied nodes
/// chooses with the same odds. In passes without branches: the highest total, how many have it,
/// then the chosen one among those.
fn select_host(nodes: &[NodeId], totals: &[i64], rng: &mut Rng, tie_break: &TieBreak) -> NodeId {
    let best = *totals
        .iter()
        .max()
        .expect("selectHost needs a feasible node");
    let ties = totals
        .iter()
        .fold(0usize, |k, &t| k.wrapping_add(usize::from(t == best)));
    let mut tied = nodes
        .iter()
        .zip(totals)
        .filter(|&(_, &t)| t == best)
        .map(|(&n, _)| n);
    let chosen = match tie_break {
        _ if ties == 1 => tied.next(),
        TieBreak::Random => tied.nth(rng.pick_tie(ties as u64) as usize),
        TieBreak::Rank(rank) => tied.min_by_key(|&n| rank[n as usize]),
    };
    chosen.expect("the best total is among the totals")
}

pub(super) fn is_local_score(s: &dyn ScorePlugin) -> bool {
    !s.is_static() && s.node_local()
}

/// Adds the weighted, normalised score of every plugin to `totals` (one per feasible node),
/// reading static plugins' raw scores from `statics` when given, and leaving out node-local
/// plugins when `skip_local` (their totals are already in).
fn add_scores(
    profile: &Profile,
    cx: &Cycle,
    feasible: &[NodeId],
    statics: Option<&Vec<Option<Option<Vec<i64>>>>>,
    skip_local: bool,
    totals: &mut [i64],
) {
    let mut scores = Vec::new();
    for (j, (plugin, weight)) in profile.scores.iter().enumerate() {
        if skip_local && is_local_score(plugin.as_ref()) {
            continue;
        }
        match statics.and_then(|s| s[j].as_ref()) {
            Some(None) => {}
            Some(Some(raw)) => {
                scores.clear();
                scores.extend(feasible.iter().map(|&n| raw[n as usize]));
                plugin.normalize(cx, &None, &mut scores);
                for (t, s) in totals.iter_mut().zip(&scores) {
                    *t += s * weight;
                }
            }
            None => {
                add_plugin_scores(plugin.as_ref(), cx, feasible, *weight, totals, &mut scores);
            }
        }
    }
}

/// PreScore, then `weight ×` the plugin's normalised score of each of `feasible` added to
/// `totals`; false when PreScore skips the pod.
pub(super) fn add_plugin_scores(
    plugin: &dyn ScorePlugin,
    cx: &Cycle,
    feasible: &[NodeId],
    weight: i64,
    totals: &mut [i64],
    buf: &mut Vec<i64>,
) -> bool {
    match plugin.pre_score(cx, feasible) {
        PreScore::Run(d) => {
            plugin.add_weighted(cx, &d, feasible, weight, totals, buf);
            true
        }
        PreScore::Skip => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// selectHost over nodes offered one at a time, as the walk chose before it kept a list: the
    /// oracle `select_host` must agree with.
    struct Chooser<'a> {
        best_total: i64,
        ties: &'a mut Vec<NodeId>,
    }

    impl<'a> Chooser<'a> {
        fn new(ties: &'a mut Vec<NodeId>) -> Self {
            ties.clear();
            Chooser {
                best_total: i64::MIN,
                ties,
            }
        }

        fn offer(&mut self, node: NodeId, total: i64) {
            if total > self.best_total {
                self.best_total = total;
                self.ties.clear();
                self.ties.push(node);
            } else if total == self.best_total {
                self.ties.push(node);
            }
        }

        /// The chosen node; at least one must have been offered. Draws from `rng` only for a tie.
        fn choose(&self, rng: &mut Rng, tie_break: &TieBreak) -> NodeId {
            match (self.ties.as_slice(), tie_break) {
                ([], _) => panic!("selectHost needs a feasible node"),
                ([only], _) => *only,
                (ties, TieBreak::Random) => ties[rng.pick_tie(ties.len() as u64) as usize],
                (ties, TieBreak::Rank(rank)) => *ties
                    .iter()
                    .min_by_key(|&&n| rank[n as usize])
                    .expect("ties are not empty"),
            }
        }
    }

    #[test]
    fn select_host_chooses_as_the_chooser_does() {
        let mut rng = Rng::new(5);
        for case in 0..300u64 {
            let len = 1 + rng.below(40) as usize;
            let nodes: Vec<NodeId> = (0..len as NodeId).map(|n| n * 3 + 1).collect();
            let totals: Vec<i64> = (0..len).map(|_| rng.below(1 + case % 4) as i64).collect();
            let rank: Vec<u32> = (0..200).map(|_| rng.below(50) as u32).collect();
            for tie_break in [TieBreak::Random, TieBreak::Rank(rank)] {
                let mut ties = Vec::new();
                let mut chooser = Chooser::new(&mut ties);
                for (&n, &t) in nodes.iter().zip(&totals) {
                    chooser.offer(n, t);
                }
                let (mut a, mut b) = (Rng::new(case), Rng::new(case));
                let offered = chooser.choose(&mut a, &tie_break);
                let listed = select_host(&nodes, &totals, &mut b, &tie_break);
                assert_eq!(listed, offered, "case {case}");
                assert_eq!(
                    a.below(1 << 40),
                    b.below(1 << 40),
                    "the same draws, case {case}"
                );
            }
        }
    }

    #[test]
    fn adaptive_percentage_of_nodes_to_score() {
        assert_eq!(feasible_nodes_to_find(50, None), 50);
        assert_eq!(feasible_nodes_to_find(1000, None), 420); // 50 - 8 = 42%
        assert_eq!(feasible_nodes_to_find(5000, None), 500); // 50 - 40 = 10%
        assert_eq!(feasible_nodes_to_find(6000, None), 300); // floor at 5%
        assert_eq!(feasible_nodes_to_find(150, None), 100); // at least 100
        assert_eq!(feasible_nodes_to_find(5000, Some(100)), 5000);
        assert_eq!(feasible_nodes_to_find(5000, Some(30)), 1500);
    }
}
