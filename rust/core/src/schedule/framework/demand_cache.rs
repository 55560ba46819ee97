//! The per-demand cache: the node-local plugins' verdicts and weighted scores, per node, for pods
//! with the same resource demand, brought up to date from the cluster's change log.

use super::schedule_one::is_local_score;
use super::{Cycle, CycleData, PreFilter, PreScore, Profile, Scheduler};
use crate::hash::IdHasher;
use crate::model::gpu::GpuDemand;
use crate::schedule::cached_walk::{Totals, REJECTED};
use crate::schedule::state::UNBOUND;
use crate::snapshot::NodeId;

/// What a pod asks of a node's resources: pods with equal demand get equal answers from the
/// node-local plugins (see [`FilterPlugin::node_local`]).
///
/// [`FilterPlugin::node_local`]: super::FilterPlugin::node_local
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Demand {
    request: Vec<i64>,
    nonzero: [i64; 2],
    gpu: GpuDemand,
}

impl Demand {
    fn of(cx: &Cycle) -> Demand {
        Demand {
            request: cx.request.to_vec(),
            nonzero: cx.snap.pods.nonzero[cx.p()],
            gpu: cx.gpu,
        }
    }
}

/// A hash of a demand, cheap enough for every cycle.
fn fingerprint(request: &[i64], nonzero: [i64; 2], gpu: GpuDemand) -> u64 {
    use std::hash::Hasher;
    let mut h = IdHasher::default();
    for &v in request.iter().chain(&nonzero) {
        h.write_u64(v as u64);
    }
    h.write_u64(u64::from(gpu.count) << 32 | u64::from(gpu.milli));
    h.finish()
}

/// Memory for node-local results: a queue interleaves the replicas of many workloads, but they
/// ask for few distinct demands (145 among the 100,400 pods of the benchmark cluster).
const DEMAND_CACHE_BYTES: usize = 64 << 20;
const DEMANDS_KEPT_AT_LEAST: usize = 8;

/// The node-local plugins' results for one demand, per node position, up to date with the first
/// `seen` entries of the cluster's change log (see
/// [`ClusterState::changes`](crate::schedule::state::ClusterState::changes)).
pub(super) struct DemandCache {
    demand: Demand,
    key: u64,
    last_used: u64,
    /// `None`: nothing computed yet.
    seen: Option<usize>,
    /// PreFilter of the node-local filters, by filter index (`None` for the others), and PreScore
    /// of the node-local score plugins that score the demand: they depend on the demand alone, so
    /// they run once per demand, not once per cycle.
    pub(super) pre_filters: Vec<Option<PreFilter>>,
    pre_scores: Vec<(usize, CycleData)>,
    /// Weighted sum of the node-local scores, or [`REJECTED`]. Node-local scores are final
    /// (0..=100, weights 1..=100), so a few of them add up to far less than `i32::MAX`; half the
    /// width of a score, the walk reads half the memory.
    pub(super) total: Totals,
    /// Reasons of the node-local filters, for this demand's unschedulable pods (by group).
    pub(super) local_reasons: Vec<super::diagnosis::LocalReasons>,
}

impl DemandCache {
    /// Brings the results up to date: recomputes the nodes changed since the last cycle of this
    /// demand, or every node when the cache is new or more changes were logged since than there
    /// are nodes. Up to date, the walk only reads them.
    pub(super) fn refresh(&mut self, profile: &Profile, cx: &Cycle, scratch: &mut Refresh) {
        let log = &cx.state.changes;
        let order = &cx.state.node_order[..];
        let Refresh {
            positions,
            nodes,
            fits,
            scores,
        } = scratch;
        positions.clear();
        match self.seen {
            Some(seen) if log.len() - seen < order.len() => {
                // A node-local filter that rejected a node rejects it still after more pods were
                // bound there (see `FilterPlugin::node_local`): only a node a pod left, or one
                // not rejected, can have a new result.
                // Written unconditionally and kept by advancing the length: whether a node was
                // rejected is a coin toss to the branch predictor.
                let kept = self.total.as_slice();
                let entries = &log[seen..];
                positions.extend(entries.iter().map(|&entry| entry & !UNBOUND));
                // The loops run over slices: stores into a vector's buffer would otherwise make
                // the compiler reload every vector's length and address at every step.
                let buf = &mut positions[..];
                let mut len = 0;
                for (k, &entry) in entries.iter().enumerate() {
                    let pos = buf[k];
                    buf[len] = pos;
                    len += usize::from(entry & UNBOUND != 0 || kept[pos as usize] != REJECTED);
                }
                positions.truncate(len);
            }
            _ => positions.extend(0..order.len() as u32),
        }
        self.seen = Some(log.len());
        if positions.is_empty() {
            return;
        }
        nodes.clear();
        nodes.extend(positions.iter().map(|&pos| order[pos as usize]));
        fits.clear();
        fits.resize(nodes.len(), true);
        for (i, pre) in self.pre_filters.iter().enumerate() {
            if let Some(PreFilter::Run(data)) = pre {
                profile.filters[i].filter_all(cx, data, nodes, fits);
            }
        }
        // Score only the nodes that passed, packed to the front (without branches: nearly all
        // pass, but which do not is unpredictable).
        let (nodes, fits) = (&mut nodes[..], &fits[..]);
        let mut passed = 0;
        for k in 0..nodes.len() {
            nodes[passed] = nodes[k];
            passed += usize::from(fits[k]);
        }
        // Buffers of at least `passed` entries, not cleared: every entry read is written first.
        let totals = at_least(&mut scores.0, passed);
        let one = at_least(&mut scores.1, passed);
        if self.pre_scores.is_empty() {
            totals.fill(0);
        }
        for (k, (j, data)) in self.pre_scores.iter().enumerate() {
            let (plugin, weight) = &profile.scores[*j];
            // A copy: stores into `totals` could otherwise change it, to the compiler.
            let weight = *weight;
            plugin.score_all(cx, data, &nodes[..passed], one);
            if k == 0 {
                for (t, s) in totals.iter_mut().zip(one.iter()) {
                    *t = weight * s;
                }
            } else {
                for (t, s) in totals.iter_mut().zip(one.iter()) {
                    *t += weight * s;
                }
            }
        }
        self.total.set_all(positions, fits, totals);
    }
}

/// The first `len` entries of `buf`, grown to hold them.
fn at_least(buf: &mut Vec<i64>, len: usize) -> &mut [i64] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

/// Buffers [`DemandCache::refresh`] reuses from cycle to cycle.
#[derive(Default)]
pub(super) struct Refresh {
    /// The positions to recompute, and their nodes.
    positions: Vec<u32>,
    nodes: Vec<NodeId>,
    fits: Vec<bool>,
    /// Weighted totals, and one plugin's scores.
    scores: (Vec<i64>, Vec<i64>),
}

impl Scheduler<'_> {
    /// The cache for the cycle's demand, made (or recycled from the least recently used) if new.
    pub(super) fn demand_cache(&mut self, cx: &Cycle) -> usize {
        self.cycles += 1;
        let nonzero = cx.snap.pods.nonzero[cx.p()];
        let key = fingerprint(cx.request, nonzero, cx.gpu);
        let same = |d: &Demand| d.request == cx.request && d.nonzero == nonzero && d.gpu == cx.gpu;
        let at = match self.demand_index.get(&key).copied() {
            Some(at) if same(&self.demands[at].demand) => at,
            found => {
                // A new demand takes a fresh cache while memory allows, else the least recently
                // used one (or that of another demand with the same fingerprint).
                let n = cx.snap.nodes.len();
                let keep = (DEMAND_CACHE_BYTES / (8 * n.max(1))).max(DEMANDS_KEPT_AT_LEAST);
                let at = match found {
                    Some(at) => at,
                    None if self.demands.len() < keep => {
                        self.demands.push(DemandCache {
                            demand: Demand::default(),
                            key,
                            last_used: 0,
                            seen: None,
                            pre_filters: Vec::new(),
                            pre_scores: Vec::new(),
                            total: Totals::new(n),
                            local_reasons: Vec::new(),
                        });
                        self.demands.len() - 1
                    }
                    None => (0..self.demands.len())
                        .min_by_key(|&i| self.demands[i].last_used)
                        .expect("caches are kept"),
                };
                let d = &mut self.demands[at];
                if self.demand_index.get(&d.key) == Some(&at) {
                    self.demand_index.remove(&d.key);
                }
                d.key = key;
                d.demand = Demand::of(cx);
                d.seen = None;
                d.local_reasons.clear();
                let profile = self.profile;
                d.pre_filters = profile
                    .filters
                    .iter()
                    .map(|f| (f.node_local() && !f.is_static()).then(|| f.pre_filter(cx)))
                    .collect();
                d.pre_scores = local_pre_scores(profile, cx);
                self.demand_index.insert(key, at);
                at
            }
        };
        self.demands[at].last_used = self.cycles;
        at
    }
}

/// PreScore of the node-local score plugins that score this pod: (plugin index, data).
fn local_pre_scores(profile: &Profile, cx: &Cycle) -> Vec<(usize, CycleData)> {
    profile
        .scores
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| is_local_score(s.as_ref()))
        .filter_map(|(j, (s, _))| match s.pre_score(cx, &[]) {
            PreScore::Run(d) => Some((j, d)),
            PreScore::Skip => None,
        })
        .collect()
}
