//! The `defrag` start: the partly used GPU device with the least taken gives its pods to the
//! fullest other partly used devices they may go to.

use std::collections::BTreeSet;

use super::tally::Tally;
use super::{Limits, Objective, Start, FULL_GPU};
use crate::model::gpu::{mask_indices, DeviceMask};
use crate::rebalance::Problem;
use crate::snapshot::{NodeId, Snapshot};

/// A device: its node and its index there.
type Device = (NodeId, u32);

/// The devices a movable pod holds, partly used, by how much is taken of them.
struct Devices {
    /// Per device (`at[n] + d`): the movable pods on it, in class order.
    holders: Vec<Vec<usize>>,
    at: Vec<usize>,
    tried: Vec<bool>,
    /// Per device: its key in `partly`, if it is there.
    keyed: Vec<Option<i64>>,
    /// `(milli taken, node, device)` of the devices with a holder, partly used and not tried.
    partly: BTreeSet<(i64, NodeId, u32)>,
}

impl Devices {
    fn new(t: &Tally) -> Self {
        let mut at = Vec::with_capacity(t.nodes() + 1);
        let mut total = 0;
        for n in 0..t.nodes() as NodeId {
            at.push(total);
            total += t.devices_on(n) as usize;
        }
        at.push(total);
        let mut out = Devices {
            holders: vec![Vec::new(); total],
            at,
            tried: vec![false; total],
            keyed: vec![None; total],
            partly: BTreeSet::new(),
        };
        for (i, p) in t.pods.iter().enumerate() {
            for d in mask_indices(p.devices) {
                out.holders[out.at[p.node as usize] + d as usize].push(i);
            }
        }
        for n in 0..t.nodes() as NodeId {
            for d in 0..t.devices_on(n) {
                out.refresh(t, (n, d));
            }
        }
        out
    }

    fn index(&self, (n, d): Device) -> usize {
        self.at[n as usize] + d as usize
    }

    /// Puts device `dev` in `partly`, or takes it out, as it is now.
    fn refresh(&mut self, t: &Tally, dev: Device) {
        let i = self.index(dev);
        let taken = FULL_GPU - t.gpu_free(dev.0, dev.1);
        let wanted =
            (!self.holders[i].is_empty() && 0 < taken && taken < FULL_GPU && !self.tried[i])
                .then_some(taken);
        if self.keyed[i] != wanted {
            if let Some(was) = self.keyed[i] {
                self.partly.remove(&(was, dev.0, dev.1));
            }
            if let Some(now) = wanted {
                self.partly.insert((now, dev.0, dev.1));
            }
            self.keyed[i] = wanted;
        }
    }

    /// Moves pod `i` to `n`, onto `devices` there; the devices it leaves and takes are noted in
    /// `touched` for a refresh.
    fn shift(
        &mut self,
        t: &mut Tally,
        i: usize,
        n: NodeId,
        devices: DeviceMask,
        touched: &mut Vec<Device>,
    ) {
        let (was, had) = (t.pods[i].node, t.pods[i].devices);
        t.shift(i, n, devices);
        for d in mask_indices(had) {
            let k = self.index((was, d));
            self.holders[k].retain(|&j| j != i);
            touched.push((was, d));
        }
        for d in mask_indices(devices) {
            let k = self.index((n, d));
            let at = self.holders[k].partition_point(|&j| j < i);
            self.holders[k].insert(at, i);
            touched.push((n, d));
        }
    }
}

/// Frees whole GPU devices one partly used device at a time (see the module above).
pub fn defrag(snap: &Snapshot, problem: &Problem, objective: &Objective, limits: &Limits) -> Start {
    let mut t = Tally::new(snap, problem, objective, limits.max_moves);
    let mut devices = Devices::new(&t);
    let mut value = t.value();
    let mut complete = true;
    let mut touched: Vec<Device> = Vec::new();
    while let Some(&(_, n, d)) = devices.partly.first() {
        if limits.expired() {
            complete = false;
            break;
        }
        let k = devices.index((n, d));
        devices.tried[k] = true;
        devices.refresh(&t, (n, d));
        let pods = devices.holders[k].clone();
        // Only single-device shares are repacked device by device.
        if pods.iter().any(|&i| t.classes.count[t.pods[i].cls] != 1) {
            continue;
        }
        // The other devices, fullest first, as they were before these moves (`partly` is
        // refreshed after them).
        let mut undo: Vec<(usize, NodeId, DeviceMask)> = Vec::new();
        for &i in &pods {
            if !t.may_leave(i) {
                break;
            }
            let p = t.pods[i];
            let milli = t.classes.milli[p.cls];
            // A pod that stays on its node keeps its devices: only another node is a move.
            let spot = devices.partly.iter().rev().find(|&&(_, m, e)| {
                m != p.node && m != p.origin && t.gpu_free(m, e) >= milli && t.may_take(i, m)
            });
            let Some(&(_, m, e)) = spot else {
                break;
            };
            undo.push((i, p.node, p.devices));
            devices.shift(&mut t, i, m, 1 << e, &mut touched);
        }
        if undo.len() == pods.len() {
            let now = t.value();
            if now < value - 1e-12 {
                value = now;
                undo.clear();
            }
        }
        for &(i, m, had) in undo.iter().rev() {
            devices.shift(&mut t, i, m, had, &mut touched);
        }
        for dev in touched.drain(..) {
            devices.refresh(&t, dev);
        }
    }
    Start {
        moves: t.moves(),
        value,
        complete,
    }
}
