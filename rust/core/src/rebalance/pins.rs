//! Pods a rebalance must leave where they are.

use crate::snapshot::{NodeId, PodId, Snapshot};

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
    /// Annotated `kube-engine.io/evict: "false"`.
    Annotated,
    /// No controller owns it: evicted, it would not come back.
    Bare,
    /// Its node is one the caller keeps as it is.
    NodeKept,
}

impl Pin {
    pub fn as_str(self) -> &'static str {
        match self {
            Pin::DaemonSet => "DaemonSet pod",
            Pin::Mirror => "static (mirror) pod",
            Pin::SystemCritical => "system-critical priority",
            Pin::LocalStorage => "uses local storage",
            Pin::Annotated => "annotated kube-engine.io/evict: \"false\"",
            Pin::Bare => "no controller (would not be recreated)",
            Pin::NodeKept => "on a node kept as it is",
        }
    }
}

/// What the caller allows to move beyond the safe default, and which nodes it keeps or excludes.
#[derive(Clone, Debug, Default)]
pub struct PinOptions {
    /// Move pods with emptyDir/hostPath volumes (their local data is lost).
    pub allow_local_storage: bool,
    /// Move pods no controller owns (as evicting deletes them, the plan's target placement is
    /// then only reached by re-creating them by hand; the bundled trace has no controllers).
    pub allow_bare: bool,
    /// Per node (empty: none): its pods stay where they are.
    pub keep: Vec<bool>,
    /// Per node (empty: none): it takes no pod that is not on it already.
    pub exclude: Vec<bool>,
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
/// most fundamental first.
pub fn pin(snap: &Snapshot, p: PodId, opts: &PinOptions) -> Option<Pin> {
    let i = p as usize;
    let pods = &snap.pods;
    if pods.mirror[i] {
        Some(Pin::Mirror)
    } else if snap.is_daemon(p) {
        Some(Pin::DaemonSet)
    } else if pods.priority[i] >= SYSTEM_CRITICAL_PRIORITY {
        Some(Pin::SystemCritical)
    } else if pods.no_evict[i] {
        Some(Pin::Annotated)
    } else if pods.local_storage[i] && !opts.allow_local_storage {
        Some(Pin::LocalStorage)
    } else if pods.owner[i].is_none() && !opts.allow_bare {
        Some(Pin::Bare)
    } else if snap.current.node[i].is_some_and(|n| opts.kept(n)) {
        Some(Pin::NodeKept)
    } else {
        None
    }
}
