//! The placement a greedy start improves, with what each node has left, the move and disruption
//! budgets spent, and the objective's terms, all kept up to date move by move (measuring a
//! placement from scratch is too slow for a move at a time).
//!
//! The arithmetic is Python's, operation for operation: utilisations are integer loads over
//! integer allocatable (exact below 2^53, which no node's milli-cpu or memory in bytes reaches),
//! sums are added left to right as Python 3.11's `sum()` does, the running sum and sum of squares
//! of the utilisations are updated by differences (and so drift as Python's drift), and the
//! square of the mean is the C library's `pow`.

use std::collections::BTreeMap;

use super::classes::Classes;
use super::floats::{py_square, Key};
use super::{Objective, Term, BALANCED, FULL_GPU};
use crate::model::gpu::{mask_indices, DeviceMask};
use crate::rebalance::drain::Move;
use crate::rebalance::{Pin, Problem};
use crate::snapshot::{NodeId, PodId, Snapshot};

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

    pub classes: Classes,

    /// Per node and resource of `classes.resources`: what is left.
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
        let classes = Classes::new(snap, problem);
        let width = classes.resources.len();
        let mut free = Vec::with_capacity(n_nodes * width);
        for n in 0..n_nodes {
            free.extend(classes.resources.iter().map(|&r| problem.free.get(n, r)));
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
        for (c, class) in problem.classes.iter().enumerate() {
            for &p in &class.pods {
                let origin = snap.current.node[p as usize].expect("classes hold bound pods");
                let n = origin as usize;
                let at_origin = if classes.count[c] > 0 {
                    snap.current.gpu_devices[p as usize]
                } else {
                    0
                };
                for (f, d) in free[n * width..(n + 1) * width]
                    .iter_mut()
                    .zip(classes.demand(c))
                {
                    *f -= d;
                }
                for d in mask_indices(at_origin) {
                    gpu[gpu_at[n] + d as usize] -= classes.milli[c];
                }
                for r in 0..2 {
                    load[r][n] += classes.balanced[c][r];
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
            classes,
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
                self.classes.balanced[p.cls][r] as f64 / a as f64
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
        n == p.origin || self.classes.candidate(p.cls, n)
    }

    /// Pod `i`'s requests fit in what `n` has left.
    pub fn fits(&self, i: usize, n: NodeId) -> bool {
        let w = self.classes.resources.len();
        let n = n as usize;
        self.free[n * w..(n + 1) * w]
            .iter()
            .zip(self.classes.demand(self.pods[i].cls))
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
        let (count, milli) = (
            self.classes.count[p.cls] as usize,
            self.classes.milli[p.cls],
        );
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
        let milli = self.classes.milli[cls];
        for d in mask_indices(had) {
            self.device(was, d, milli);
        }
        self.node(cls, was, -1);
        let was_moved = was != origin;
        self.pods[i].node = n;
        self.pods[i].devices = devices;
        self.node(cls, n, 1);
        for d in mask_indices(devices) {
            self.device(n, d, -milli);
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
        let w = self.classes.resources.len();
        for (f, d) in self.free[n * w..(n + 1) * w]
            .iter_mut()
            .zip(self.classes.demand(cls))
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
            self.load[r][n] += sign * self.classes.balanced[cls][r];
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
