//! Filter: `DoNotSchedule` constraints reject a node whose domain would exceed `maxSkew`.

use std::sync::Arc;

use super::common::{has_all_keys, Constraints, Inclusion};
use super::PodTopologySpread;
use crate::hash::IdSet;
use crate::intern::Sym;
use crate::model::spread::WhenUnsatisfiable;
use crate::schedule::framework::{Cycle, CycleData, FilterPlugin, PreFilter, Reason};
use crate::snapshot::NodeId;

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
            let key = (honoured, snap.node_constraints(cx.pod));
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
