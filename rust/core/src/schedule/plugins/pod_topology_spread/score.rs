//! Score: `ScheduleAnyway` constraints prefer the nodes of the emptiest domains.

use std::cell::RefCell;
use std::sync::Arc;

use super::common::{has_all_keys, Constraint, Inclusion};
use super::PodTopologySpread;
use crate::model::spread::WhenUnsatisfiable;
use crate::schedule::framework::{
    add_weighted_scores, Cycle, CycleData, Divider, PreScore, ScorePlugin, MAX_NODE_SCORE,
};
use crate::snapshot::NodeId;

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
    ///
    /// [`Topology::scored_domain`]: crate::schedule::pod_index::Topology::scored_domain
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
