//! The placement a greedy start improves, with what each node has left, the move and disruption
//! budgets spent, and the objective's terms, all kept up to date move by move (measuring a
//! placement from scratch is too slow for a move at a time).
//!
//! The arithmetic is Python's, operation for operation: utilisations are integer loads over
//! integer allocatable (exact below 2^53, which no node's milli-cpu or memory in bytes reaches),
//! sums are added left to right as Python 3.11's `sum()` does, the running sum and sum of squares
//! of the utilisations are updated by differences (and so drift as Python's drift), and the
//! square of the mean is the C library's `pow`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{Objective, Term};
use crate::hash::IdMap;
use crate::model::gpu::{mask_indices, DeviceMask, DEVICE_MILLI};
use crate::rebalance::drain::Move;
use crate::rebalance::{Class, Pin, Problem};
use crate::resources::{ResourceId, CPU, MEMORY, PODS};
use crate::snapshot::{NodeId, PodId, Snapshot};

const FULL_GPU: i64 = DEVICE_MILLI as i64;
/// The resources balance measures, in the order it averages them (index 0 and 1 below).
const BALANCED: [ResourceId; 2] = [CPU, MEMORY];

/// A float ordered as Python orders floats (IEEE comparison, so -0.0 equals 0.0); NaN, which
/// no utilisation is, sorts by `total_cmp` so that the order stays total.
#[derive(Clone, Copy, Debug)]
pub(super) struct Key(pub f64);

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .partial_cmp(&other.0)
            .unwrap_or_else(|| self.0.total_cmp(&other.0))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

/// `x ** 2` as Python computes it: the C library's `pow`, which for about one value in a
/// thousand rounds differently from `x * x`. The exponent is hidden from the optimiser, which
/// would otherwise turn the call into that product.
fn py_square(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}

/// A movable pod: where it started (with its GPU devices there) and where it is.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pod {
    pub id: PodId,
    pub cls: usize,
    pub origin: NodeId,
    pub at_origin: DeviceMask,
    pub node: NodeId,
    pub devices: DeviceMask,
}

/// Nodes as a bit set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct NodeSet(Vec<u64>);

impl NodeSet {
    fn of(nodes: &[NodeId], n_nodes: usize) -> Self {
        let mut bits = vec![0u64; n_nodes.div_ceil(64)];
        for &n in nodes {
            bits[n as usize / 64] |= 1 << (n % 64);
        }
        NodeSet(bits)
    }

    fn contains(&self, n: NodeId) -> bool {
        self.0[n as usize / 64] >> (n % 64) & 1 == 1
    }
}

/// The nodes pinned pods keep in use (DaemonSet and static pods ride along with their node).
fn pinned_in_use(snap: &Snapshot, problem: &Problem) -> Vec<bool> {
    let mut kept = vec![false; snap.nodes.len()];
    for &(p, why) in &problem.pinned {
        if !matches!(why, Pin::DaemonSet | Pin::Mirror) {
            if let Some(n) = snap.current.node[p as usize] {
                kept[n as usize] = true;
            }
        }
    }
    kept
}

/// Per class, its set of candidate nodes as an index into the distinct sets.
fn candidate_sets(classes: &[Class]) -> (Vec<usize>, Vec<Vec<NodeId>>) {
    let mut index: IdMap<&[NodeId], usize> = IdMap::default();
    let mut sets = Vec::new();
    let of_class = classes
        .iter()
        .map(|c| {
            *index.entry(&c.candidates).or_insert_with(|| {
                sets.push(c.candidates.clone());
                sets.len() - 1
            })
        })
        .collect();
    (of_class, sets)
}

pub(super) struct Tally {
    /// The movable pods, in class order (the pods of classes that interact stay and are folded
    /// into what their nodes have left).
    pub pods: Vec<Pod>,
    /// Per pod: the disruption budgets that cover it (`budgets[budget_at[i]..budget_at[i + 1]]`).
    budget_at: Vec<usize>,
    budgets: Vec<usize>,
    allowed: Vec<u32>,
    spent: Vec<u32>,
    max_moves: Option<usize>,
    moves: usize,

    /// Per class: its distinct set of candidate nodes (an index into `sets`).
    pub set_of_class: Vec<usize>,
    /// The distinct candidate sets, ascending.
    pub sets: Vec<Vec<NodeId>>,
    members: Vec<NodeSet>,
    /// Per class and resource a pod must fit in (`width` of them: those some class requests, and
    /// the pod count): its request.
    width: usize,
    demand: Vec<i64>,
    /// Per class: its cpu and memory requests.
    balanced_demand: Vec<[i64; 2]>,
    pub milli: Vec<i64>,
    pub count: Vec<u32>,

    /// Per node and resource: what is left.
    free: Vec<i64>,
    /// Per GPU device (`gpu_at[n] + d`): milli left.
    gpu: Vec<i64>,
    gpu_at: Vec<usize>,
    pods_on: Vec<u32>,
    kept_in_use: Vec<bool>,
    prices: Vec<f64>,
    /// The balanced resources some node counts for (cpu, memory: 0, 1).
    pub dims: Vec<usize>,
    alloc: [Vec<i64>; 2],
    load: [Vec<i64>; 2],
    /// Per balanced resource and node: utilisation, -1 where the node does not count.
    share: [Vec<f64>; 2],
    /// Per balanced resource: the utilisations as a multiset, for the peak.
    peaks: [BTreeMap<Key, u32>; 2],
    /// Per balanced resource: counted nodes, sum and sum of squares of their utilisation.
    sums: [(usize, f64, f64); 2],
    pack: f64,
    devices_used: i64,
    terms: Vec<(Term, f64, f64)>,
    move_cost: f64,
}

impl Tally {
    pub fn new(
        snap: &Snapshot,
        problem: &Problem,
        objective: &Objective,
        max_moves: Option<usize>,
    ) -> Self {
        let n_nodes = snap.nodes.len();
        let classes = &problem.classes;
        let row = |c: usize| snap.pods.requests.row(classes[c].pods[0] as usize);
        // The resources a pod must fit in: those some class requests, and the pod count. A
        // request of 0 is checked too: nothing fits where pinned pods over-commit.
        let columns: Vec<usize> = (0..snap.resources.len())
            .filter(|&r| r == PODS || (0..classes.len()).any(|c| row(c)[r] != 0))
            .collect();
        let width = columns.len();
        let mut demand = Vec::with_capacity(classes.len() * width);
        let mut balanced_demand = Vec::with_capacity(classes.len());
        let mut milli = Vec::with_capacity(classes.len());
        let mut count = Vec::with_capacity(classes.len());
        for c in 0..classes.len() {
            let row = row(c);
            demand.extend(
                columns
                    .iter()
                    .map(|&r| if r == PODS { row[r].max(1) } else { row[r] }),
            );
            balanced_demand.push(BALANCED.map(|r| row[r]));
            let gpu = snap.pods.gpu[classes[c].pods[0] as usize];
            milli.push(i64::from(gpu.milli));
            count.push(gpu.count);
        }

        let mut free = Vec::with_capacity(n_nodes * width);
        for n in 0..n_nodes {
            free.extend(columns.iter().map(|&r| problem.free.get(n, r)));
        }
        let mut gpu_at = Vec::with_capacity(n_nodes + 1);
        let mut gpu = Vec::new();
        for devices in &problem.gpu_free {
            gpu_at.push(gpu.len());
            gpu.extend(devices.iter().map(|&f| i64::from(f)));
        }
        gpu_at.push(gpu.len());

        let mut kept_in_use = pinned_in_use(snap, problem);
        // What pinned pods take of the balanced resources.
        let mut load: [Vec<i64>; 2] = [0, 1].map(|i| {
            (0..n_nodes)
                .map(|n| objective.allocatable[i][n] - problem.free.get(n, BALANCED[i]))
                .collect()
        });
        let mut covered: Vec<Vec<usize>> = vec![Vec::new(); snap.pods.len()];
        for (b, budget) in problem.budgets.iter().enumerate() {
            for &p in &budget.pods {
                covered[p as usize].push(b);
            }
        }

        let mut pods = Vec::new();
        let (mut budget_at, mut budgets) = (vec![0], Vec::new());
        let mut pods_on = vec![0u32; n_nodes];
        for (c, class) in classes.iter().enumerate() {
            for &p in &class.pods {
                let origin = snap.current.node[p as usize].expect("classes hold bound pods");
                let n = origin as usize;
                let at_origin = if count[c] > 0 {
                    snap.current.gpu_devices[p as usize]
                } else {
                    0
                };
                for (f, d) in free[n * width..(n + 1) * width]
                    .iter_mut()
                    .zip(&demand[c * width..(c + 1) * width])
                {
                    *f -= d;
                }
                for d in mask_indices(at_origin) {
                    gpu[gpu_at[n] + d as usize] -= milli[c];
                }
                for r in 0..2 {
                    load[r][n] += balanced_demand[c][r];
                }
                if class.interacts {
                    // It stays: its node stays in use.
                    kept_in_use[n] = true;
                    continue;
                }
                pods_on[n] += 1;
                pods.push(Pod {
                    id: p,
                    cls: c,
                    origin,
                    at_origin,
                    node: origin,
                    devices: at_origin,
                });
                budgets.extend_from_slice(&covered[p as usize]);
                budget_at.push(budgets.len());
            }
        }

        let (set_of_class, sets) = candidate_sets(classes);
        let members = sets.iter().map(|s| NodeSet::of(s, n_nodes)).collect();

        let prices = objective
            .prices
            .clone()
            .unwrap_or_else(|| vec![1.0; n_nodes]);
        let mut pack = 0.0;
        for n in 0..n_nodes {
            if pods_on[n] > 0 || kept_in_use[n] {
                pack += prices[n];
            }
        }
        let devices_used = gpu.iter().filter(|&&f| f < FULL_GPU).count() as i64;
        let alloc = objective.balanced.clone();
        let dims: Vec<usize> = (0..2)
            .filter(|&r| alloc[r].iter().any(|&a| a != 0))
            .collect();
        let mut share: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut peaks: [BTreeMap<Key, u32>; 2] = Default::default();
        let mut sums = [(0, 0.0, 0.0); 2];
        for &r in &dims {
            share[r] = (0..n_nodes)
                .map(|n| {
                    let a = alloc[r][n];
                    if a > 0 {
                        load[r][n] as f64 / a as f64
                    } else {
                        -1.0
                    }
                })
                .collect();
            let (mut k, mut s, mut s2) = (0, 0.0, 0.0);
            for &x in share[r].iter().filter(|&&x| x >= 0.0) {
                k += 1;
                s += x;
            }
            for &x in share[r].iter().filter(|&&x| x >= 0.0) {
                s2 += x * x;
            }
            sums[r] = (k, s, s2);
            for &x in &share[r] {
                *peaks[r].entry(Key(x)).or_insert(0) += 1;
            }
        }

        Tally {
            pods,
            budget_at,
            budgets,
            allowed: problem.budgets.iter().map(|b| b.allowed).collect(),
            spent: vec![0; problem.budgets.len()],
            max_moves,
            moves: 0,
            set_of_class,
            sets,
            members,
            width,
            demand,
            balanced_demand,
            milli,
            count,
            free,
            gpu,
            gpu_at,
            pods_on,
            kept_in_use,
            prices,
            dims,
            alloc,
            load,
            share,
            peaks,
            sums,
            pack,
            devices_used,
            terms: objective.terms.clone(),
            move_cost: objective.move_cost,
        }
    }

    pub fn nodes(&self) -> usize {
        self.pods_on.len()
    }

    /// The objective value of the placement.
    pub fn value(&self) -> f64 {
        let mut parts = 0.0;
        for &r in &self.dims {
            let (k, s, s2) = self.sums[r];
            let k = k as f64;
            let variance = s2 / k - py_square(s / k);
            // Python's max(variance, 0.0): the first unless the second is greater.
            let variance = if 0.0 > variance { 0.0 } else { variance };
            let peak = self.peaks[r].last_key_value().expect("nodes").0 .0;
            parts += peak + variance.sqrt();
        }
        let balance = if self.dims.is_empty() {
            0.0
        } else {
            parts / self.dims.len() as f64
        };
        let mut value = 0.0;
        for &(term, weight, scale) in &self.terms {
            let x = match term {
                Term::Pack => self.pack,
                Term::Balance => balance,
                Term::Defrag => self.devices_used as f64,
            };
            value += weight * x / scale;
        }
        value + self.move_cost * self.moves as f64
    }

    /// The highest utilisation of node `n` over the balanced resources (-1: it does not count).
    pub fn hotness(&self, n: NodeId) -> f64 {
        let mut hot = -1.0;
        for (i, &r) in self.dims.iter().enumerate() {
            let x = self.share[r][n as usize];
            if i == 0 || x > hot {
                hot = x;
            }
        }
        hot
    }

    /// Pod `i`'s requests over its node's allocatable, summed over the balanced resources.
    pub fn size(&self, i: usize) -> f64 {
        let p = &self.pods[i];
        let mut size = 0.0;
        for &r in &self.dims {
            let a = self.alloc[r][p.node as usize];
            size += if a > 0 {
                self.balanced_demand[p.cls][r] as f64 / a as f64
            } else {
                0.0
            };
        }
        size
    }

    fn budgets_of(&self, i: usize) -> &[usize] {
        &self.budgets[self.budget_at[i]..self.budget_at[i + 1]]
    }

    /// The budgets allow pod `i` to go to another node than its own.
    pub fn may_leave(&self, i: usize) -> bool {
        let p = &self.pods[i];
        if p.node != p.origin {
            return true; // a pod moved already spends nothing more
        }
        if self.max_moves.is_some_and(|m| self.moves >= m) {
            return false;
        }
        self.budgets_of(i)
            .iter()
            .all(|&b| self.spent[b] < self.allowed[b])
    }

    /// Pod `i` may go to `n` (it is a candidate of the pod's class, or the pod's own node).
    pub fn candidate(&self, i: usize, n: NodeId) -> bool {
        let p = &self.pods[i];
        n == p.origin || self.members[self.set_of_class[p.cls]].contains(n)
    }

    /// Pod `i`'s requests fit in what `n` has left.
    pub fn fits(&self, i: usize, n: NodeId) -> bool {
        let c = self.pods[i].cls;
        let n = n as usize;
        self.free[n * self.width..(n + 1) * self.width]
            .iter()
            .zip(&self.demand[c * self.width..(c + 1) * self.width])
            .all(|(f, d)| f >= d)
    }

    /// Pod `i` may go to `n`, fits there, and the budgets allow it.
    pub fn may_take(&self, i: usize, n: NodeId) -> bool {
        let p = &self.pods[i];
        if !self.candidate(i, n) {
            return false;
        }
        if n != p.node && !self.fits(i, n) {
            return false;
        }
        n == p.origin || self.may_leave(i)
    }

    /// Milli left on device `d` of node `n`.
    pub fn gpu_free(&self, n: NodeId, d: u32) -> i64 {
        self.gpu[self.gpu_at[n as usize] + d as usize]
    }

    /// The GPU devices of node `n`.
    pub fn devices_on(&self, n: NodeId) -> u32 {
        (self.gpu_at[n as usize + 1] - self.gpu_at[n as usize]) as u32
    }

    /// GPU devices for pod `i` on `n`: its own at home, else the fullest that take it (fewest
    /// milli left, then lowest index). `None`: they do not fit.
    pub fn devices_for(&self, i: usize, n: NodeId) -> Option<DeviceMask> {
        let p = &self.pods[i];
        let (count, milli) = (self.count[p.cls] as usize, self.milli[p.cls]);
        if count == 0 {
            return Some(0);
        }
        if n == p.origin {
            let own = if n == p.node { p.devices } else { 0 };
            let ok = mask_indices(p.at_origin).all(|d| {
                let back = if own >> d & 1 == 1 { milli } else { 0 };
                self.gpu_free(n, d) + back >= milli
            });
            return ok.then_some(p.at_origin);
        }
        let mut fits: Vec<(i64, u32)> = (0..self.devices_on(n))
            .map(|d| (self.gpu_free(n, d), d))
            .filter(|&(f, _)| f >= milli)
            .collect();
        if fits.len() < count {
            return None;
        }
        fits.sort_unstable();
        Some(fits[..count].iter().fold(0, |mask, &(_, d)| mask | 1 << d))
    }

    /// Moves pod `i` to `n`, onto GPU devices `devices` there.
    pub fn shift(&mut self, i: usize, n: NodeId, devices: DeviceMask) {
        let Pod {
            cls,
            node: was,
            devices: had,
            origin,
            ..
        } = self.pods[i];
        for d in mask_indices(had) {
            self.device(was, d, self.milli[cls]);
        }
        self.node(cls, was, -1);
        let was_moved = was != origin;
        self.pods[i].node = n;
        self.pods[i].devices = devices;
        self.node(cls, n, 1);
        for d in mask_indices(devices) {
            self.device(n, d, -self.milli[cls]);
        }
        let moved = n != origin;
        if was_moved != moved {
            let at = self.budget_at[i]..self.budget_at[i + 1];
            if moved {
                self.moves += 1;
                for &b in &self.budgets[at] {
                    self.spent[b] += 1;
                }
            } else {
                self.moves -= 1;
                for &b in &self.budgets[at] {
                    self.spent[b] -= 1;
                }
            }
        }
    }

    fn device(&mut self, n: NodeId, d: u32, give: i64) {
        let f = &mut self.gpu[self.gpu_at[n as usize] + d as usize];
        let before = *f < FULL_GPU;
        *f += give;
        self.devices_used += i64::from(*f < FULL_GPU) - i64::from(before);
    }

    fn node(&mut self, cls: usize, n: NodeId, sign: i64) {
        let n = n as usize;
        let w = self.width;
        for (f, d) in self.free[n * w..(n + 1) * w]
            .iter_mut()
            .zip(&self.demand[cls * w..(cls + 1) * w])
        {
            *f -= sign * d;
        }
        let in_use = self.pods_on[n] > 0 || self.kept_in_use[n];
        self.pods_on[n] = self.pods_on[n]
            .checked_add_signed(sign as i32)
            .expect("a pod leaves a node it is on");
        let now = self.pods_on[n] > 0 || self.kept_in_use[n];
        self.pack += self.prices[n] * (i64::from(now) - i64::from(in_use)) as f64;
        for &r in &self.dims {
            let a = self.alloc[r][n];
            self.load[r][n] += sign * self.balanced_demand[cls][r];
            if a <= 0 {
                continue;
            }
            let (old, new) = (self.share[r][n], self.load[r][n] as f64 / a as f64);
            self.share[r][n] = new;
            let peaks = &mut self.peaks[r];
            match peaks.get_mut(&Key(old)) {
                Some(k) if *k > 1 => *k -= 1,
                _ => {
                    peaks.remove(&Key(old));
                }
            }
            *peaks.entry(Key(new)).or_insert(0) += 1;
            let sums = &mut self.sums[r];
            sums.1 += new - old;
            sums.2 += new * new - old * old;
        }
    }

    /// The pods away from their node, with their GPU devices there.
    pub fn moves(&self) -> Vec<Move> {
        self.pods
            .iter()
            .filter(|p| p.node != p.origin)
            .map(|p| Move {
                pod: p.id,
                from: p.origin,
                to: p.node,
                devices: p.devices,
            })
            .collect()
    }
}
