//! Pods a rebalance must leave where they are.

use crate::model::pod::LocalVolumes;
use crate::snapshot::{NodeId, OptOut, PodId, Snapshot};

/// Upstream's `SystemCriticalPriority`: pods at or above it are critical (`IsCriticalPod`).
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Why a bound pod stays on its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pin {
    /// Run by a DaemonSet: it belongs to its node.
    DaemonSet,
    /// A static pod's mirror: the kubelet, not the API, runs it.
    Mirror,
    /// Priority at or above system-critical.
    SystemCritical,
    /// Uses node-local storage (emptyDir, hostPath) that a move would lose.
    LocalStorage,
    /// Annotated not to be evicted (by kube-engine's, the cluster autoscaler's or Karpenter's
    /// annotation).
    Annotated(OptOut),
    /// No controller owns it: evicted, it would not come back.
    Bare,
    /// Its node is one the caller keeps as it is.
    NodeKept,
    /// Its node runs the control plane, which a rebalance never empties.
    ControlPlane,
    /// kube-engine moved it (it is the replacement of a moved pod) within the cooldown: moving it
    /// again would be churn.
    RecentlyMoved,
    /// It uses PersistentVolumeClaims and the input describes none: where its volumes can be
    /// reached is unknown.
    UnknownVolumes,
}

impl Pin {
    pub fn as_str(self) -> &'static str {
        match self {
            Pin::DaemonSet => "DaemonSet pod",
            Pin::Mirror => "static (mirror) pod",
            Pin::SystemCritical => "system-critical priority",
            Pin::LocalStorage => "uses local storage",
            Pin::Annotated(why) => why.as_str(),
            Pin::Bare => "no controller (would not be recreated)",
            Pin::NodeKept => "on a node kept as it is",
            Pin::ControlPlane => "on a control-plane node",
            Pin::RecentlyMoved => "moved by kube-engine within the cooldown",
            Pin::UnknownVolumes => {
                "uses PersistentVolumeClaims the snapshot does not describe (export pvc,pv,storageclass too)"
            }
        }
    }
}

/// What the caller allows to move beyond the safe default, and which nodes it keeps or excludes.
#[derive(Clone, Debug, Default)]
pub struct PinOptions {
    /// The kinds of node-local volumes (emptyDir, hostPath) whose pods may move (their local data
    /// is lost); a pod with a kind not allowed stays.
    pub allow_local_storage: LocalVolumes,
    /// Move pods no controller owns (as evicting deletes them, the plan's target placement is
    /// then only reached by re-creating them by hand; the bundled trace has no controllers).
    pub allow_bare: bool,
    /// Per node (empty: none): its pods stay where they are.
    pub keep: Vec<bool>,
    /// Per node (empty: none): it takes no pod that is not on it already.
    pub exclude: Vec<bool>,
    /// Pods kube-engine moved at or after this time (seconds since the epoch) stay.
    pub moved_since: Option<i64>,
}

impl PinOptions {
    pub fn kept(&self, n: NodeId) -> bool {
        self.keep.get(n as usize).copied().unwrap_or(false)
    }

    pub fn excluded(&self, n: NodeId) -> bool {
        self.exclude.get(n as usize).copied().unwrap_or(false)
    }
}

/// Why bound, active pod `p` must stay, or `None` if it may move. The first reason that applies,
/// most fundamental first. An opt-in annotation (the descheduler's, or the cluster autoscaler's
/// `safe-to-evict: "true"`) lifts the usual protections, as those tools read it: critical
/// priority, local storage, no controller; an opt-out annotation is never overridden.
pub fn pin(snap: &Snapshot, p: PodId, opts: &PinOptions) -> Option<Pin> {
    let i = p as usize;
    let pods = &snap.pods;
    let opted_in = pods.opt_in[i];
    let node = snap.current.node[i];
    if pods.mirror[i] {
        Some(Pin::Mirror)
    } else if snap.is_daemon(p) {
        Some(Pin::DaemonSet)
    } else if let Some(why) = pods.opt_out[i] {
        Some(Pin::Annotated(why))
    } else if opts
        .moved_since
        .is_some_and(|t| pods.moved_at[i].is_some_and(|m| m >= t))
    {
        Some(Pin::RecentlyMoved)
    } else if pods.priority[i] >= SYSTEM_CRITICAL_PRIORITY && !opted_in {
        Some(Pin::SystemCritical)
    } else if !pods.local_storage[i]
        .beyond(opts.allow_local_storage)
        .is_empty()
        && !opted_in
    {
        Some(Pin::LocalStorage)
    } else if pods.owner[i].is_none() && !opts.allow_bare && !opted_in {
        Some(Pin::Bare)
    } else if !pods.claims[i].is_empty() && !snap.volumes.described {
        Some(Pin::UnknownVolumes)
    } else if node.is_some_and(|n| opts.kept(n)) {
        Some(Pin::NodeKept)
    } else if node.is_some_and(|n| snap.nodes.control_plane[n as usize]) {
        Some(Pin::ControlPlane)
    } else {
        None
    }
}
