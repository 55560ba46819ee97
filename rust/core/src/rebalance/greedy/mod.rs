//! Greedy starts for the `balance` and `defrag` objectives, from the current placement of a
//! [`Problem`]'s movable pods.
//!
//! [`balance`]: take the hottest node (highest utilisation of cpu or memory) that has movable
//! pods; move one of its pods, largest first, to the coolest node it may go to where it fits, if
//! that lowers the objective value; when none of its pods can go, set the node aside.
//! [`defrag`]: take the partly used GPU device with the least taken; move its pods to the fullest
//! other partly used devices they fit on (on nodes they may go to), if that lowers the objective
//! value. Both keep every capacity, GPU device, the move budget and the PodDisruptionBudgets, and
//! stop when nothing improves (or at the deadline, with the best placement so far); CP-SAT then
//! improves what they leave.
//!
//! The greedy moves check no inter-pod rule: pods of classes that [`Class::interacts`] stay
//! where they are. Each step is measured exactly as the Python search measures a placement
//! (`kube_engine.rebalancing.objective`), in the same order of floating-point operations, so that
//! a decision between two nearly equal values comes out the same on either side.
//!
//! [`Class::interacts`]: super::Class::interacts

mod balance;
mod classes;
mod defrag;
mod floats;
mod tally;
#[cfg(test)]
mod tests;

use std::time::Instant;

pub use balance::balance;
pub use defrag::defrag;

use super::drain::Move;
use crate::model::gpu::DEVICE_MILLI;
use crate::resources::{ResourceId, CPU, MEMORY};

const FULL_GPU: i64 = DEVICE_MILLI as i64;
/// The resources balance measures, in the order it averages them (index 0 and 1 here).
const BALANCED: [ResourceId; 2] = [CPU, MEMORY];

/// A term of the rebalance objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// The nodes in use, or the sum of their prices.
    Pack,
    /// Per balanced resource (cpu, memory) the peak plus the standard deviation of the nodes'
    /// utilisation, averaged.
    Balance,
    /// The GPU devices not wholly free.
    Defrag,
}

impl Term {
    pub fn named(name: &str) -> Option<Term> {
        match name {
            "pack" => Some(Term::Pack),
            "balance" => Some(Term::Balance),
            "defrag" => Some(Term::Defrag),
            _ => None,
        }
    }
}

/// What a placement is worth: `Σ weight · term / scale` over `terms`, in their order, plus
/// `move_cost` per pod moved (the Python `Scorer`), with the per-node data the terms need.
#[derive(Clone, Debug)]
pub struct Objective {
    /// `(term, weight, scale)`.
    pub terms: Vec<(Term, f64, f64)>,
    pub move_cost: f64,
    /// Per node (snapshot order): its price; `None`: every node counts 1.
    pub prices: Option<Vec<f64>>,
    /// Per balanced resource (cpu, memory) and node: the allocatable.
    pub allocatable: [Vec<i64>; 2],
    /// The same where the node counts for balance, 0 where `evaluate` leaves it out (not ready,
    /// cordoned).
    pub balanced: [Vec<i64>; 2],
}

/// Where a greedy start stops before it runs out of improving moves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// At most this many pods end away from their node (`None`: no limit).
    pub max_moves: Option<usize>,
    /// Stop here with the best placement so far (`None`: run to the end).
    pub deadline: Option<Instant>,
}

impl Limits {
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// What a greedy start found.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    /// Pods that end on another node than their own, in class order, with their GPU devices
    /// there.
    pub moves: Vec<Move>,
    /// The objective value of the placement, as the start measured it.
    pub value: f64,
    /// False when the deadline stopped it.
    pub complete: bool,
}
