//! NodeResourcesFit: a node must have room for the pod's effective request in every resource (and
//! GPU devices for its GPU demand); scoring strategies LeastAllocated (default), MostAllocated and
//! RequestedToCapacityRatio, over weighted resources (default cpu and memory, weight 1 each).

use std::sync::Arc;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::model::gpu::{self, GPU_RESOURCE};
use crate::resources::{CPU, EPHEMERAL_STORAGE, MEMORY, PODS, STANDARD};
use crate::schedule::framework::{
    Cycle, CycleData, Divider, FilterPlugin, PreFilter, PreScore, Reason, ScorePlugin,
    MAX_NODE_SCORE,
};
use crate::snapshot::NodeId;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Strategy {
    #[default]
    LeastAllocated,
    MostAllocated,
    RequestedToCapacityRatio,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default = "one")]
    pub weight: i64,
}

fn one() -> i64 {
    1
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtilizationShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedToCapacityRatio {
    pub shape: Vec<UtilizationShapePoint>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoringStrategy {
    #[serde(rename = "type", default)]
    pub kind: Strategy,
    #[serde(default)]
    pub resources: Option<Vec<ResourceSpec>>,
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatio>,
}

/// `NodeResourcesFitArgs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FitArgs {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
}

pub struct NodeResourcesFit {
    ignored: Vec<String>,
    ignored_groups: Vec<String>,
    strategy: Strategy,
    resources: Vec<ResourceSpec>,
    /// RequestedToCapacityRatio's shape, scaled to utilisation 0..100 → score 0..100.
    shape: Vec<(i64, i64)>,
}

impl NodeResourcesFit {
    pub fn new(args: FitArgs) -> Result<Self, ConfigError> {
        let s = args.scoring_strategy.unwrap_or_default();
        let resources = s.resources.unwrap_or_else(|| {
            vec![
                ResourceSpec {
                    name: "cpu".into(),
                    weight: 1,
                },
                ResourceSpec {
                    name: "memory".into(),
                    weight: 1,
                },
            ]
        });
        if let Some(r) = resources.iter().find(|r| !(1..=100).contains(&r.weight)) {
            return Err(ConfigError::at(
                "scoringStrategy.resources",
                format!("weight of {:?} must be 1..100, got {}", r.name, r.weight),
            ));
        }
        let mut shape = Vec::new();
        if s.kind == Strategy::RequestedToCapacityRatio {
            let points = s
                .requested_to_capacity_ratio
                .ok_or_else(|| ConfigError::new("scoringStrategy.requestedToCapacityRatio is required for RequestedToCapacityRatio"))?
                .shape;
            if points.is_empty() {
                return Err(ConfigError::new(
                    "scoringStrategy.requestedToCapacityRatio.shape must not be empty",
                ));
            }
            for (i, p) in points.iter().enumerate() {
                if !(0..=100).contains(&p.utilization) || !(0..=10).contains(&p.score) {
                    return Err(ConfigError::at(
                        format!("scoringStrategy.requestedToCapacityRatio.shape[{i}]"),
                        "utilization must be 0..100 and score 0..10",
                    ));
                }
                if i > 0 && p.utilization <= points[i - 1].utilization {
                    return Err(ConfigError::at(
                        format!("scoringStrategy.requestedToCapacityRatio.shape[{i}]"),
                        "utilization values must increase",
                    ));
                }
            }
            // Shape scores are 0..10 in the API; the framework's scores are 0..100.
            shape = points
                .iter()
                .map(|p| (p.utilization, p.score * MAX_NODE_SCORE / 10))
                .collect();
        } else if s.requested_to_capacity_ratio.is_some() {
            return Err(ConfigError::new("scoringStrategy.requestedToCapacityRatio is only allowed with RequestedToCapacityRatio"));
        }
        Ok(NodeResourcesFit {
            ignored: args.ignored_resources,
            ignored_groups: args.ignored_resource_groups,
            strategy: s.kind,
            resources,
            shape,
        })
    }

    fn is_ignored(&self, name: &str) -> bool {
        // Only extended resources can be ignored.
        !(self.ignored.is_empty() && self.ignored_groups.is_empty())
            && name.contains('/')
            && (self.ignored.iter().any(|i| i == name)
                || self
                    .ignored_groups
                    .iter()
                    .any(|g| name.split('/').next() == Some(g.as_str())))
    }

    /// A resource's score for `requested` of `capacity` under the strategy.
    #[inline(always)]
    fn resource_score(&self, requested: i64, capacity: i64) -> i64 {
        if capacity == 0 {
            return match self.strategy {
                Strategy::RequestedToCapacityRatio => broken_linear(&self.shape, 100),
                _ => 0,
            };
        }
        match self.strategy {
            Strategy::LeastAllocated => least_allocated(requested, capacity),
            Strategy::MostAllocated => most_allocated(requested, capacity),
            Strategy::RequestedToCapacityRatio => {
                let utilisation = if requested > capacity {
                    100
                } else {
                    percent(requested, capacity)
                };
                broken_linear(&self.shape, utilisation)
            }
        }
    }
}

/// `part × 100 / whole`, rounded down, for `0 ≤ part ≤ whole`, `whole` not 0. Up to
/// `whole = i64::MAX / 100` (every real node) the product fits, so it is computed without the
/// overflow checks, which in the scoring loop cost as much as the division; a bigger node is
/// scored in 128 bits.
#[inline(always)]
fn percent(part: i64, whole: i64) -> i64 {
    if (0..=whole).contains(&part) && whole <= i64::MAX / MAX_NODE_SCORE {
        ((part as u64).wrapping_mul(MAX_NODE_SCORE as u64) / whole as u64) as i64
    } else {
        let exact = i128::from(part) * i128::from(MAX_NODE_SCORE) / i128::from(whole);
        i64::try_from(exact).expect("a part of the whole scores at most 100")
    }
}

/// The piecewise-linear function through `shape`, flat before the first and after the last point.
fn broken_linear(shape: &[(i64, i64)], x: i64) -> i64 {
    for (i, &(u, s)) in shape.iter().enumerate() {
        if x <= u {
            if i == 0 {
                return s;
            }
            let (u0, s0) = shape[i - 1];
            return s0 + (s - s0) * (x - u0) / (u - u0);
        }
    }
    shape.last().map_or(0, |&(_, s)| s)
}

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn node_local(&self) -> bool {
        true
    }

    /// The resources the pod asks for (and that are not ignored), once per demand.
    fn pre_filter(&self, cx: &Cycle) -> PreFilter {
        let list: Vec<(usize, i64)> = cx
            .request
            .iter()
            .enumerate()
            .filter(|&(r, &req)| req > 0 && !self.is_ignored(cx.snap.resources.name(r)))
            .map(|(r, &req)| (r, req))
            .collect();
        let mut standard = [i64::MIN; STANDARD.len()];
        for &(r, req) in &list {
            if r < STANDARD.len() {
                standard[r] = req;
            }
        }
        let extended = list
            .iter()
            .copied()
            .filter(|&(r, _)| r >= STANDARD.len())
            .collect();
        PreFilter::Run(Some(Arc::new(Wanted {
            list,
            standard,
            extended,
        })))
    }

    /// The code says what is short: bit `k` for the `k`-th resource asked for (the first
    /// [`SHORT_BITS`]), bit [`SHORT_BITS`] for GPU devices.
    fn filter(&self, cx: &Cycle, data: &CycleData, node: NodeId) -> Result<(), u32> {
        let wanted = &wanted(data).list;
        let st = cx.state;
        let mut short = 0u32;
        let mut any = false;
        for (k, &(r, req)) in wanted.iter().enumerate() {
            if req > st.free(node, r) {
                any = true;
                if k < SHORT_BITS {
                    short |= 1 << k;
                }
            }
        }
        if !gpu::fits(&st.gpu_free[node as usize], cx.gpu) {
            any = true;
            short |= 1 << SHORT_BITS;
        }
        if any {
            Err(short)
        } else {
            Ok(())
        }
    }

    fn reasons_by_code(&self, data: &CycleData) -> bool {
        wanted(data).list.len() <= SHORT_BITS
    }

    fn filter_all(&self, cx: &Cycle, data: &CycleData, nodes: &[NodeId], fits: &mut [bool]) {
        let wanted = wanted(data);
        let st = cx.state;
        let q = wanted.standard;
        // The standard resources at once, without branches (which is short is a coin toss to
        // the branch predictor); a resource the pod does not ask for needs `i64::MIN`.
        let standard_fits = |n: usize| {
            let free = st.room[n].free();
            q.iter().zip(&free).fold(true, |ok, (q, f)| ok & (q <= f))
        };
        if wanted.extended.is_empty() && cx.gpu.is_none() {
            // Nearly every pod: nothing else to check.
            for (ok, &n) in fits.iter_mut().zip(nodes) {
                *ok &= standard_fits(n as usize);
            }
            return;
        }
        let alloc = &cx.snap.nodes.allocatable;
        for (ok, &n) in fits.iter_mut().zip(nodes) {
            let n = n as usize;
            *ok = *ok
                && standard_fits(n)
                && (wanted.extended.is_empty() || {
                    let (have, used) = (alloc.row(n), st.requested.row(n));
                    wanted
                        .extended
                        .iter()
                        .all(|&(r, req)| req <= have[r] - used[r])
                })
                && (cx.gpu.is_none() || gpu::fits(&st.gpu_free[n], cx.gpu));
        }
    }

    fn reasons(
        &self,
        cx: &Cycle,
        data: &CycleData,
        node: NodeId,
        code: u32,
        out: &mut Vec<Reason>,
    ) {
        let wanted = &wanted(data).list;
        let st = cx.state;
        let by_code = self.reasons_by_code(data);
        // Fixed texts for the common resources: FitError counts them over thousands of nodes.
        for (k, &(r, req)) in wanted.iter().enumerate() {
            let short = if by_code {
                code & (1 << k) != 0
            } else {
                req > st.free(node, r)
            };
            if !short {
                continue;
            }
            out.push(match r {
                PODS => "Too many pods".into(),
                CPU => "Insufficient cpu".into(),
                MEMORY => "Insufficient memory".into(),
                EPHEMERAL_STORAGE => "Insufficient ephemeral-storage".into(),
                _ => format!("Insufficient {}", cx.snap.resources.name(r)).into(),
            });
        }
        let gpu_short = if by_code {
            code & (1 << SHORT_BITS) != 0
        } else {
            !gpu::fits(&st.gpu_free[node as usize], cx.gpu)
        };
        if gpu_short {
            out.push(INSUFFICIENT_GPU.into());
        }
    }
}

/// Resources a rejection code names one by one (see `filter`).
const SHORT_BITS: usize = 30;

/// What NodeResourcesFit's filter checks for one demand.
struct Wanted {
    /// The resources asked for and not ignored, with the request.
    list: Vec<(usize, i64)>,
    /// The requests of the standard resources (by resource id), `i64::MIN` where not in `list`.
    standard: [i64; STANDARD.len()],
    /// The rest of `list`.
    extended: Vec<(usize, i64)>,
}

fn wanted(data: &CycleData) -> &Wanted {
    data.as_ref()
        .and_then(|d| d.downcast_ref::<Wanted>())
        .expect("pre_filter")
}

/// `Insufficient {GPU_RESOURCE}`, spelled out to be a fixed text.
const INSUFFICIENT_GPU: &str = "Insufficient nvidia.com/gpu";

/// The scored resources resolved for one cycle: (which, weight, the pod's request).
enum Scored {
    Resource(usize),
    Gpu,
}

impl ScorePlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }

    fn node_local(&self) -> bool {
        true
    }

    fn pre_score(&self, cx: &Cycle, _: &[NodeId]) -> PreScore {
        let mut list: Vec<(Scored, i64, i64)> = Vec::with_capacity(self.resources.len());
        let nonzero = cx.snap.pods.nonzero[cx.p()];
        for spec in &self.resources {
            let entry = match spec.name.as_str() {
                "cpu" => (Scored::Resource(CPU), nonzero[0]),
                "memory" => (Scored::Resource(MEMORY), nonzero[1]),
                GPU_RESOURCE => (Scored::Gpu, cx.gpu.total_milli() as i64),
                name => match cx.snap.resources.get(name) {
                    Some(r) => (Scored::Resource(r), cx.request[r]),
                    None => continue,
                },
            };
            list.push((entry.0, spec.weight, entry.1));
        }
        PreScore::Run(Some(Arc::new(list)))
    }

    fn score(&self, cx: &Cycle, data: &CycleData, node: NodeId) -> i64 {
        self.score_node(cx, scored(data), node)
    }

    fn score_all(&self, cx: &Cycle, data: &CycleData, nodes: &[NodeId], out: &mut [i64]) {
        let list = scored(data);
        // The default, cpu then memory, and a strategy that scores by a percentage: one straight
        // pass wherever both have capacity (nearly every node), with the strategy and the
        // average chosen once, outside the loop.
        let (
            &[(Scored::Resource(CPU), w0, q0), (Scored::Resource(MEMORY), w1, q1)],
            Strategy::LeastAllocated | Strategy::MostAllocated,
        ) = (list, self.strategy)
        else {
            for (o, &n) in out.iter_mut().zip(nodes) {
                *o = self.score_node(cx, list, n);
            }
            return;
        };
        let pass = CpuMemory {
            plugin: self,
            cx,
            list,
            weights: [w0, w1],
            requests: [q0, q1],
        };
        // Weights are 1..=100 each (checked when the profile is made), so the sum is positive.
        let sum = w0 + w1;
        let shift = sum.trailing_zeros();
        // Scores are never negative, so the shift rounds down as division does.
        let by_shift = |total: i64| total >> shift;
        let by = Divider::new(sum);
        let by_divider = |total: i64| by.div(total);
        let least = self.strategy == Strategy::LeastAllocated;
        match (least, (sum as u64).is_power_of_two()) {
            (true, true) => pass.run(nodes, out, least_allocated_plain, by_shift),
            (true, false) => pass.run(nodes, out, least_allocated_plain, by_divider),
            (false, true) => pass.run(nodes, out, most_allocated_plain, by_shift),
            (false, false) => pass.run(nodes, out, most_allocated_plain, by_divider),
        }
    }
}

/// LeastAllocated's score of one resource with capacity (not 0).
#[inline(always)]
fn least_allocated(requested: i64, capacity: i64) -> i64 {
    if requested > capacity {
        0
    } else {
        // Requests are never negative, so the difference is exact; saturating keeps a mistake
        // from wrapping.
        percent(capacity.saturating_sub(requested), capacity)
    }
}

/// MostAllocated's score of one resource with capacity (not 0).
#[inline(always)]
fn most_allocated(requested: i64, capacity: i64) -> i64 {
    percent(requested.min(capacity), capacity)
}

/// The capacities [`CpuMemory`] scores without checks: `1..=i64::MAX / 100`, so that `part × 100`
/// fits for any part of it.
const PLAIN_CAPACITY: u64 = (i64::MAX / MAX_NODE_SCORE) as u64;

/// [`least_allocated`] for a capacity of `1..=PLAIN_CAPACITY` and a request of `0..2^64`.
#[inline(always)]
fn least_allocated_plain(requested: u64, capacity: u64) -> u64 {
    if requested > capacity {
        0
    } else {
        // Below the capacity, and the capacity times 100 fits: nothing to check.
        (capacity - requested).wrapping_mul(MAX_NODE_SCORE as u64) / capacity
    }
}

/// [`most_allocated`] for a capacity of `1..=PLAIN_CAPACITY` and a request of `0..2^64`.
#[inline(always)]
fn most_allocated_plain(requested: u64, capacity: u64) -> u64 {
    // At most the capacity, whose 100-fold fits: nothing to check.
    requested.min(capacity).wrapping_mul(MAX_NODE_SCORE as u64) / capacity
}

/// The scoring pass over cpu and memory, NodeResourcesFit's default resources.
struct CpuMemory<'a> {
    plugin: &'a NodeResourcesFit,
    cx: &'a Cycle<'a>,
    list: &'a [(Scored, i64, i64)],
    weights: [i64; 2],
    requests: [i64; 2],
}

impl CpuMemory<'_> {
    /// Scores every node with `score` per resource and `average` of their weighted sum; each
    /// combination is its own loop, free of the choice.
    #[inline(always)]
    fn run(
        &self,
        nodes: &[NodeId],
        out: &mut [i64],
        score: impl Fn(u64, u64) -> u64,
        average: impl Fn(i64) -> i64,
    ) {
        let ([w0, w1], [q0, q1]) = (self.weights, self.requests);
        // Requests are never negative: as unsigned, their sums cannot wrap.
        let (q0, q1) = (q0 as u64, q1 as u64);
        let st = self.cx.state;
        for (o, &node) in out.iter_mut().zip(nodes) {
            let room = &st.room[node as usize];
            let [c0, c1] = room.allocatable.map(|c| c as u64);
            // One comparison per resource for "0 or above PLAIN_CAPACITY": nearly never.
            if c0.wrapping_sub(1) >= PLAIN_CAPACITY || c1.wrapping_sub(1) >= PLAIN_CAPACITY {
                *o = self.plugin.score_node(self.cx, self.list, node);
                continue;
            }
            let [r0, r1] = room.nonzero.map(|r| r as u64);
            // Both terms are below 2^63, so the sums cannot wrap; scores and weights are at most
            // 100, so neither can the weighted sum.
            let (s0, s1) = (
                score(r0.wrapping_add(q0), c0) as i64,
                score(r1.wrapping_add(q1), c1) as i64,
            );
            *o = average(s0.wrapping_mul(w0).wrapping_add(s1.wrapping_mul(w1)));
        }
    }
}

fn scored(data: &CycleData) -> &[(Scored, i64, i64)] {
    data.as_ref()
        .and_then(|d| d.downcast_ref::<Vec<(Scored, i64, i64)>>())
        .expect("pre_score")
}

impl NodeResourcesFit {
    fn score_node(&self, cx: &Cycle, list: &[(Scored, i64, i64)], node: NodeId) -> i64 {
        let st = cx.state;
        let n = node as usize;
        let (mut total, mut weights) = (0i64, 0i64);
        for (which, weight, pod_req) in list {
            let (capacity, requested) = match *which {
                Scored::Resource(r) if r == CPU || r == MEMORY => (
                    cx.snap.nodes.allocatable.get(n, r),
                    st.room[n].nonzero[usize::from(r == MEMORY)].saturating_add(*pod_req),
                ),
                // Extended resources the pod does not ask for are not scored.
                Scored::Resource(r) if *pod_req == 0 && r > crate::resources::EPHEMERAL_STORAGE => {
                    continue
                }
                // A sum past `i64::MAX` is past any capacity, as the saturated one is.
                Scored::Resource(r) => (
                    cx.snap.nodes.allocatable.get(n, r),
                    st.requested.get(n, r).saturating_add(*pod_req),
                ),
                Scored::Gpu => {
                    let devices = i64::from(cx.snap.nodes.gpu_devices[n]);
                    let free: i64 = st.gpu_free[n].iter().map(|&f| i64::from(f)).sum();
                    (devices * 1000, devices * 1000 - free + pod_req)
                }
            };
            if capacity == 0 {
                continue;
            }
            let score = self.resource_score(requested, capacity);
            // RequestedToCapacityRatio leaves resources scoring 0 out of the average (upstream).
            if self.strategy == Strategy::RequestedToCapacityRatio && score == 0 {
                continue;
            }
            total += score * weight;
            weights += weight;
        }
        if weights == 0 {
            return 0;
        }
        match self.strategy {
            Strategy::RequestedToCapacityRatio => (total as f64 / weights as f64).round() as i64,
            _ => total / weights,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_reason_names_the_gpu_resource() {
        assert_eq!(INSUFFICIENT_GPU, format!("Insufficient {GPU_RESOURCE}"));
    }

    #[test]
    fn strategies_score_like_upstream() {
        let least = NodeResourcesFit::new(FitArgs::default()).unwrap();
        assert_eq!(least.resource_score(3000, 4000), 25);
        assert_eq!(least.resource_score(5000, 4000), 0);
        let most: FitArgs =
            serde_json::from_str(r#"{"scoringStrategy":{"type":"MostAllocated"}}"#).unwrap();
        let most = NodeResourcesFit::new(most).unwrap();
        assert_eq!(most.resource_score(3000, 4000), 75);
        assert_eq!(most.resource_score(5000, 4000), 100);
        let ratio: FitArgs = serde_json::from_str(
            r#"{"scoringStrategy":{"type":"RequestedToCapacityRatio",
                "requestedToCapacityRatio":{"shape":[{"utilization":0,"score":0},{"utilization":100,"score":10}]}}}"#,
        )
        .unwrap();
        let ratio = NodeResourcesFit::new(ratio).unwrap();
        assert_eq!(ratio.resource_score(3000, 4000), 75);
        assert_eq!(broken_linear(&[(20, 0), (80, 100)], 50), 50);
        assert_eq!(broken_linear(&[(20, 0), (80, 100)], 10), 0);
        assert_eq!(broken_linear(&[(20, 0), (80, 100)], 90), 100);
    }

    #[test]
    fn invalid_args_are_rejected() {
        let bad = |j: &str| {
            NodeResourcesFit::new(serde_json::from_str(j).unwrap())
                .err()
                .unwrap()
                .to_string()
        };
        assert!(
            bad(r#"{"scoringStrategy":{"type":"RequestedToCapacityRatio"}}"#)
                .contains("is required")
        );
        assert!(
            bad(r#"{"scoringStrategy":{"resources":[{"name":"cpu","weight":0}]}}"#)
                .contains("1..100")
        );
        assert!(
            serde_json::from_str::<FitArgs>(r#"{"scoringStrategy":{"type":"Balanced"}}"#).is_err()
        );
        assert!(serde_json::from_str::<FitArgs>(r#"{"surprise":1}"#).is_err());
    }
}
