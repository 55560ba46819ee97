//! The per-group statics cache: results of the plugins that depend only on the pod's node
//! constraints, computed once per group of pods that share them.

use super::diagnosis::Count;
use super::threads::parallel;
use super::{Cycle, CycleData, FilterPlugin, PreScore, Profile, Reason};
use crate::schedule::cached_walk::bits_of;
use crate::snapshot::NodeId;

/// Results of the static plugins for one group of pods that share node constraints: per plugin
/// (in profile order) and node, `0` for a pass or `code + 1` for a rejection; per static score
/// plugin, raw scores per node (`None`: the plugin skips these pods, or scores every node alike).
pub(super) struct Statics {
    pub(super) filters: Vec<Option<Vec<u32>>>,
    pub(super) scores: Vec<Option<Option<Vec<i64>>>>,
    /// Positions (in the scheduler's node order) of the nodes every static filter passes, as a
    /// list and as a bitset.
    pub(super) passing: Vec<u32>,
    pub(super) passing_bits: Vec<u64>,
    /// FitError reasons counted over the nodes a static filter rejects (made on first use).
    pub(super) rejected: Option<Vec<(Reason, Count)>>,
}

impl Statics {
    pub(super) fn compute(profile: &Profile, cx: &Cycle, threads: usize) -> Statics {
        use rayon::prelude::*;
        let n_nodes = cx.snap.nodes.len() as NodeId;
        let none: CycleData = None;
        let verdict =
            |f: &dyn FilterPlugin, n| f.filter(cx, &none, n).map_or_else(|code| code + 1, |_| 0);
        let filters: Vec<Option<Vec<u32>>> = profile
            .filters
            .iter()
            .map(|f| {
                f.is_static().then(|| {
                    if parallel(threads, n_nodes as usize) {
                        (0..n_nodes)
                            .into_par_iter()
                            .map(|n| verdict(f.as_ref(), n))
                            .collect()
                    } else {
                        (0..n_nodes).map(|n| verdict(f.as_ref(), n)).collect()
                    }
                })
            })
            .collect();
        let all: Vec<NodeId> = (0..n_nodes).collect();
        // Positions in the scheduler's node order (see `ClusterState::node_order`).
        let passing: Vec<u32> = (0..n_nodes)
            .filter(|&pos| {
                let n = cx.state.node_order[pos as usize];
                filters
                    .iter()
                    .flatten()
                    .all(|v: &Vec<u32>| v[n as usize] == 0)
            })
            .collect();
        let scores = profile
            .scores
            .iter()
            .map(|(s, _)| {
                s.is_static().then(|| match s.pre_score(cx, &all) {
                    PreScore::Skip => None,
                    PreScore::Run(data) => {
                        let mut out = vec![0; all.len()];
                        s.score_all(cx, &data, &all, &mut out);
                        // The same raw score on every node normalises to the same score on every
                        // node, which moves all totals alike and never changes the choice.
                        (!out.windows(2).all(|w| w[0] == w[1])).then_some(out)
                    }
                })
            })
            .collect();
        Statics {
            filters,
            scores,
            passing_bits: bits_of(&passing, n_nodes as usize),
            passing,
            rejected: None,
        }
    }
}

/// Group `group`'s static results in `statics`, computed on its first cycle.
pub(super) fn statics_of<'s>(
    statics: &'s mut Vec<Option<Statics>>,
    profile: &Profile,
    cx: &Cycle,
    group: u32,
    threads: usize,
) -> &'s mut Statics {
    let g = group as usize;
    if statics.len() <= g {
        statics.resize_with(g + 1, || None);
    }
    statics[g].get_or_insert_with(|| Statics::compute(profile, cx, threads))
}
