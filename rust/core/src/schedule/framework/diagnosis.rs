//! Why a pod is unschedulable: every node's first failing filter gives its reasons, counted over
//! the nodes and rendered like kube-scheduler's FitError.

use std::collections::BTreeMap;

use super::statics::Statics;
use super::threads::{parallel, CHUNK};
use super::{Cycle, CycleData, Profile, Reason, Scheduler};
use crate::hash::IdMap;
use crate::schedule::state::UNBOUND;
use crate::snapshot::NodeId;

/// Why a pod could not be placed: reasons counted over nodes, rendered like kube-scheduler's
/// FitError (`0/5000 nodes are available: 4200 Insufficient cpu, 800 node(s) had untolerated
/// taint {gpu: true}.`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// A PreFilter's rejection: no node was filtered then.
    pub pre_filter: Option<String>,
    /// Each reason, with how many nodes gave it (a node may give several, as `Insufficient cpu`
    /// and `Insufficient memory`).
    pub reasons: BTreeMap<String, usize>,
    /// The plugin behind each reason and behind the PreFilter rejection (the first in profile
    /// order, should two give the same text, as upstream counts them together).
    pub plugins: BTreeMap<String, &'static str>,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0/{} nodes are available:", self.nodes)?;
        if let Some(msg) = &self.pre_filter {
            write!(f, " {msg}")?;
        }
        // Upstream sorts the "count reason" strings as strings.
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        parts.sort();
        if !parts.is_empty() {
            write!(f, " {}", parts.join(", "))?;
        }
        f.write_str(".")
    }
}

impl Scheduler<'_> {
    /// Why no node fits: every node's first failing filter, in profile order, gives its reasons,
    /// counted over all nodes (kube-scheduler's FitError). Only unschedulable pods come here.
    pub(super) fn diagnose(
        &mut self,
        cx: &Cycle,
        filter_data: &[Option<CycleData>],
        group: u32,
        demand: usize,
    ) -> FitError {
        let n_nodes = cx.snap.nodes.len();
        let profile = self.profile;
        let threads = self.threads;
        let statics = self.statics[group as usize]
            .as_mut()
            .expect("place computed the group's statics");
        let runs = |i: usize| statics.filters[i].is_some() || filter_data[i].is_some();
        let last_static = (0..profile.filters.len()).rfind(|&i| statics.filters[i].is_some());
        let first_dynamic =
            (0..profile.filters.len()).find(|&i| statics.filters[i].is_none() && runs(i));
        let mut counts: IdMap<Reason, Count> = IdMap::default();
        let nodes: Vec<NodeId> = match (last_static, first_dynamic) {
            // When the static filters come first, a node one of them rejects gives the same reasons
            // to every pod of the group: count those once, and walk only the other nodes.
            (Some(s), Some(d)) if s < d => {
                let filters = &statics.filters;
                let rejected = statics.rejected.get_or_insert_with(|| {
                    let all: Vec<NodeId> = (0..n_nodes as NodeId)
                        .filter(|&n| filters.iter().flatten().any(|v| v[n as usize] != 0))
                        .collect();
                    count_reasons(profile, cx, filters, filter_data, &all, threads)
                        .into_iter()
                        .collect()
                });
                counts.extend(rejected.iter().cloned());
                let order = &cx.state.node_order;
                let local = local_first(profile, &statics.filters, filter_data);
                if local.is_empty() {
                    statics
                        .passing
                        .iter()
                        .map(|&pos| order[pos as usize])
                        .collect()
                } else {
                    // The nodes the node-local filters reject give their reasons, kept per
                    // demand and brought up to date from the change log; only the others are
                    // looked at node by node.
                    let cache = &mut self.demands[demand];
                    let kept = cache.local_reasons(group, local, self.cycles);
                    kept.refresh(profile, cx, filter_data, statics);
                    kept.count(profile, cx, filter_data, &mut counts);
                    kept.open(&statics.passing, order)
                }
            }
            _ => (0..n_nodes as NodeId).collect(),
        };
        for (r, k) in count_reasons(profile, cx, &statics.filters, filter_data, &nodes, threads) {
            merge(&mut counts, r, k);
        }
        let mut reasons = BTreeMap::new();
        let mut plugins = BTreeMap::new();
        for (r, k) in counts {
            let r = r.into_owned();
            plugins.insert(r.clone(), profile.filters[k.filter].name());
            reasons.insert(r, k.nodes);
        }
        FitError {
            nodes: n_nodes,
            pre_filter: None,
            reasons,
            plugins,
        }
    }
}

/// The filters that run for this pod, other than static ones, that come before every other such
/// filter and are node-local with reasons given by code alone (NodeResourcesFit, mostly): on a
/// node every static filter passes, the first of these that rejects it is its first failing
/// filter, whatever the filters after them would say.
fn local_first(
    profile: &Profile,
    statics: &[Option<Vec<u32>>],
    filter_data: &[Option<CycleData>],
) -> Vec<usize> {
    let mut local = Vec::new();
    for (i, f) in profile.filters.iter().enumerate() {
        if statics[i].is_some() {
            continue;
        }
        let Some(data) = &filter_data[i] else {
            continue;
        };
        if !(f.node_local() && f.reasons_by_code(data)) {
            break;
        }
        local.push(i);
    }
    local
}

/// For pods of one demand and one group: the first of the node-local filters (see
/// [`local_first`]) that rejects each node every static filter passes, and how many nodes each
/// (filter, code) rejects, up to date with the first `seen` entries of the cluster's change log.
/// A node-local verdict depends on the demand and the node alone, so only the nodes in the log
/// since can have a new one: an unschedulable pod's reasons cost the nodes changed since the
/// last one, not every node.
pub(super) struct LocalReasons {
    group: u32,
    filters: Vec<usize>,
    pub(super) last_used: u64,
    seen: Option<usize>,
    /// Per node position: 0 where no node-local filter rejects the node (or a static one does),
    /// else `k + 1` for `kinds[k]`.
    codes: Vec<u32>,
    /// (filter, code), a node it rejected, how many nodes it rejects now.
    kinds: Vec<((usize, u32), NodeId, usize)>,
}

/// Kept per demand: a demand's pods are of one group or a few.
const LOCAL_REASONS_PER_DEMAND: usize = 2;

impl super::demand_cache::DemandCache {
    /// The kept reasons for `group` and `filters`, made (or recycled) if new.
    fn local_reasons(&mut self, group: u32, filters: Vec<usize>, now: u64) -> &mut LocalReasons {
        let kept = &mut self.local_reasons;
        let at = match kept
            .iter()
            .position(|k| k.group == group && k.filters == filters)
        {
            Some(at) => at,
            None => {
                let fresh = LocalReasons {
                    group,
                    filters,
                    last_used: 0,
                    seen: None,
                    codes: Vec::new(),
                    kinds: Vec::new(),
                };
                if kept.len() < LOCAL_REASONS_PER_DEMAND {
                    kept.push(fresh);
                    kept.len() - 1
                } else {
                    let at = (0..kept.len())
                        .min_by_key(|&i| kept[i].last_used)
                        .expect("reasons are kept");
                    kept[at] = fresh;
                    at
                }
            }
        };
        kept[at].last_used = now;
        &mut kept[at]
    }
}

impl LocalReasons {
    fn refresh(
        &mut self,
        profile: &Profile,
        cx: &Cycle,
        filter_data: &[Option<CycleData>],
        statics: &Statics,
    ) {
        let log = &cx.state.changes;
        let order = &cx.state.node_order;
        let passing = &statics.passing;
        let verdict = |pos: usize| {
            let n = order[pos];
            self.filters.iter().find_map(|&i| {
                let data = filter_data[i]
                    .as_ref()
                    .expect("a node-local filter that runs");
                profile.filters[i].filter(cx, data, n).err().map(|c| (i, c))
            })
        };
        let update =
            |codes: &mut [u32], kinds: &mut Vec<((usize, u32), NodeId, usize)>, pos: usize| {
                let new = verdict(pos);
                let old = codes[pos];
                if old != 0 {
                    kinds[old as usize - 1].2 -= 1;
                }
                codes[pos] = match new {
                    None => 0,
                    Some(kind) => {
                        let k = match kinds.iter().position(|(seen, _, _)| *seen == kind) {
                            Some(k) => k,
                            None => {
                                kinds.push((kind, order[pos], 0));
                                kinds.len() - 1
                            }
                        };
                        kinds[k].2 += 1;
                        k as u32 + 1
                    }
                };
            };
        match self.seen {
            Some(seen) if log.len() - seen < passing.len() => {
                for &entry in &log[seen..] {
                    let pos = (entry & !UNBOUND) as usize;
                    if statics.passing_bits[pos / 64] >> (pos % 64) & 1 == 1 {
                        update(&mut self.codes, &mut self.kinds, pos);
                    }
                }
            }
            _ => {
                self.codes.clear();
                self.codes.resize(order.len(), 0);
                self.kinds.clear();
                for &pos in passing {
                    update(&mut self.codes, &mut self.kinds, pos as usize);
                }
            }
        }
        self.seen = Some(log.len());
    }

    /// Adds the reasons of the nodes the node-local filters reject to `counts`.
    fn count(
        &self,
        profile: &Profile,
        cx: &Cycle,
        filter_data: &[Option<CycleData>],
        counts: &mut IdMap<Reason, Count>,
    ) {
        let mut buf = Vec::new();
        for &((i, code), node, nodes) in &self.kinds {
            if nodes == 0 {
                continue;
            }
            let data = filter_data[i]
                .as_ref()
                .expect("a node-local filter that runs");
            profile.filters[i].reasons(cx, data, node, code, &mut buf);
            for r in buf.drain(..) {
                merge(counts, r, Count { nodes, filter: i });
            }
        }
    }

    /// The nodes of `passing` no node-local filter rejects, in the order of `passing`.
    fn open(&self, passing: &[u32], order: &[NodeId]) -> Vec<NodeId> {
        passing
            .iter()
            .filter(|&&pos| self.codes[pos as usize] == 0)
            .map(|&pos| order[pos as usize])
            .collect()
    }
}

/// How many nodes gave a reason, and the first filter (by index in the profile) that gave it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Count {
    nodes: usize,
    filter: usize,
}

fn merge(counts: &mut IdMap<Reason, Count>, r: Reason, k: Count) {
    let c = counts.entry(r).or_insert(Count {
        nodes: 0,
        filter: k.filter,
    });
    c.nodes += k.nodes;
    c.filter = c.filter.min(k.filter);
}

/// The reasons of each of `nodes`' first failing filter (cached verdicts for static filters),
/// counted.
fn count_reasons(
    profile: &Profile,
    cx: &Cycle,
    statics: &[Option<Vec<u32>>],
    filter_data: &[Option<CycleData>],
    nodes: &[NodeId],
    threads: usize,
) -> IdMap<Reason, Count> {
    let by_code: Vec<bool> = profile
        .filters
        .iter()
        .zip(filter_data)
        .map(|(f, data)| data.as_ref().is_some_and(|d| f.reasons_by_code(d)))
        .collect();
    let count = |nodes: &[NodeId]| {
        let mut counts = Tally::default();
        // (filter, code) → (a node rejected so, how many).
        let mut codes: IdMap<(usize, u32), (NodeId, usize)> = IdMap::default();
        let mut buf = Vec::new();
        for &node in nodes {
            let Some((i, code)) = first_failure(profile, cx, statics, filter_data, node) else {
                continue;
            };
            if by_code[i] {
                codes.entry((i, code)).or_insert((node, 0)).1 += 1;
            } else {
                let data = filter_data[i].as_ref().expect("a plugin that rejected ran");
                profile.filters[i].reasons(cx, data, node, code, &mut buf);
                for r in buf.drain(..) {
                    counts.add(r, 1, i);
                }
            }
        }
        for ((i, code), (node, k)) in codes {
            let data = filter_data[i].as_ref().expect("a plugin that rejected ran");
            profile.filters[i].reasons(cx, data, node, code, &mut buf);
            for r in buf.drain(..) {
                counts.add(r, k, i);
            }
        }
        counts.into_map()
    };
    if !parallel(threads, nodes.len()) {
        return count(nodes);
    }
    use rayon::prelude::*;
    nodes
        .par_chunks(CHUNK)
        .map(count)
        .reduce(IdMap::default, |mut a, b| {
            for (r, k) in b {
                merge(&mut a, r, k);
            }
            a
        })
}

/// The first filter, in profile order, that rejects `node` (cached verdicts for static filters;
/// `filter_data[i]` is `None` for a filter that skips the pod), with its code.
pub(super) fn first_failure(
    profile: &Profile,
    cx: &Cycle,
    statics: &[Option<Vec<u32>>],
    filter_data: &[Option<CycleData>],
    node: NodeId,
) -> Option<(usize, u32)> {
    profile.filters.iter().enumerate().find_map(|(i, f)| {
        let verdict = match (&statics[i], &filter_data[i]) {
            (Some(cached), _) => match cached[node as usize] {
                0 => Ok(()),
                code => Err(code - 1),
            },
            (None, Some(data)) => f.filter(cx, data, node),
            (None, None) => Ok(()),
        };
        verdict.err().map(|code| (i, code))
    })
}

/// Reasons counted: the few a filter gives over and over are looked up in a short list, by
/// comparing the texts, before hashing one into the map.
#[derive(Default)]
struct Tally {
    recent: Vec<(Reason, Count)>,
    counts: IdMap<Reason, Count>,
}

impl Tally {
    const RECENT: usize = 8;

    /// `n` more nodes gave reason `r`, from filter `filter`.
    fn add(&mut self, r: Reason, n: usize, filter: usize) {
        // Fixed texts are mostly the same `&'static str`: the address settles it first.
        let same =
            |seen: &Reason| (seen.as_ptr() == r.as_ptr() && seen.len() == r.len()) || *seen == r;
        if let Some((_, k)) = self.recent.iter_mut().find(|(seen, _)| same(seen)) {
            k.nodes += n;
            k.filter = k.filter.min(filter);
            return;
        }
        if self.recent.len() == Self::RECENT {
            self.flush();
        }
        self.recent.push((r, Count { nodes: n, filter }));
    }

    fn flush(&mut self) {
        for (r, k) in self.recent.drain(..) {
            merge(&mut self.counts, r, k);
        }
    }

    fn into_map(mut self) -> IdMap<Reason, Count> {
        self.flush();
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_error_message_like_kube_scheduler() {
        let e = FitError {
            nodes: 1213,
            pre_filter: None,
            reasons: [
                ("Insufficient nvidia.com/gpu".to_string(), 900),
                (
                    "node(s) didn't match Pod's node affinity/selector".to_string(),
                    313,
                ),
            ]
            .into_iter()
            .collect(),
            plugins: BTreeMap::new(),
        };
        assert_eq!(
            e.to_string(),
            "0/1213 nodes are available: 313 node(s) didn't match Pod's node affinity/selector, \
             900 Insufficient nvidia.com/gpu."
        );
    }
}
