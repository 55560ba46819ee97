//! The largest totals a snapshot may hold, so that kube-engine's resource arithmetic never
//! overflows.
//!
//! Each quantity already fits the scheduler's units (an `i64` of milli-cores for cpu, of whole
//! units — bytes for memory and storage — for everything else; larger magnitudes are capped as
//! the API server caps them). Sums of them need not: two nodes with `memory: 4Ei` do not fit an
//! `i64` together. So a snapshot is refused when, for any resource,
//!
//! * the nodes' allocatable, added up over all nodes, or
//! * the pods' effective requests, added up over all pods (terminal ones too), and for cpu and
//!   memory also the requests NodeResourcesFit scores with (a container that requests neither
//!   counts as 100m / 200Mi),
//!
//! exceed [`MAX_TOTAL`] = 2^62 units: 2^62 milli-cores of cpu (about 4.6 × 10^15 cores), 2^62
//! bytes (4Ei) of memory or ephemeral storage, 2^62 of any other resource. The error names the
//! object at which the running total (in input order) passes the limit.
//!
//! What this buys: any sum over a subset of the nodes or of the pods fits in an `i64` with room
//! for one more such sum (`requested + request`, `allocatable - requested`), so that arithmetic
//! is plain `i64`. A pod is counted at most once per node: an evicted pod held on its old node
//! while its replacement lands is one pod on two nodes, never twice on one, and nothing adds up
//! the nodes' running totals; those totals saturate all the same (`ClusterState`), so a path
//! that did count a pod twice would be off at 2^63, not panic. The bench's copies of pods
//! (`Snapshot::with_arrivals`) are held to the same limit. Products of amounts (scores'
//! `× 100`, weights, shares of a node) are computed in `i128` or floating point where they are;
//! the limit does not cover them. GPUs are counted apart, in devices of at most
//! [`crate::model::gpu::MAX_DEVICES`] per node and pod, and cannot overflow.

use super::{NodeId, PodId, Snapshot};
use crate::error::InputError;
use crate::resources::{CPU, MEMORY};

/// The most a snapshot's nodes may offer, or its pods request, of one resource in all: 2^62 in
/// the scheduler's units (see the module doc).
pub const MAX_TOTAL: i64 = 1 << 62;

/// Where a total first passes [`MAX_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Excess {
    /// The nodes' allocatable of the resource, at this node.
    Node(NodeId, usize),
    /// The pods' requests of the resource, at this pod.
    Pod(PodId, usize),
}

/// The first node, then the first pod, at which a total passes [`MAX_TOTAL`].
pub(crate) fn first_excess(s: &Snapshot) -> Option<Excess> {
    let width = s.resources.len();
    // Rows of at most i64::MAX each, stopped just past 2^62: an i128 never overflows.
    let mut total = vec![0i128; width];
    for n in 0..s.nodes.len() {
        for (r, &v) in s.nodes.allocatable.row(n).iter().enumerate() {
            total[r] += i128::from(v);
            if total[r] > i128::from(MAX_TOTAL) {
                return Some(Excess::Node(n as NodeId, r));
            }
        }
    }
    total.fill(0);
    for p in 0..s.pods.len() {
        let nonzero = s.pods.nonzero[p];
        for (r, &v) in s.pods.requests.row(p).iter().enumerate() {
            // The scoring requests are at least the real ones (a default only fills in for none).
            let v = match r {
                CPU => v.max(nonzero[0]),
                MEMORY => v.max(nonzero[1]),
                _ => v,
            };
            total[r] += i128::from(v);
            if total[r] > i128::from(MAX_TOTAL) {
                return Some(Excess::Pod(p as PodId, r));
            }
        }
    }
    None
}

/// The limit as a quantity of resource `r`.
fn limit_text(r: usize) -> &'static str {
    match r {
        CPU => "4611686018427387904m (2^62 milli-cores)",
        _ => "4Ei (2^62)",
    }
}

/// What passes the limit at `excess`, in words.
pub(crate) fn describe(s: &Snapshot, excess: Excess) -> String {
    let (who, verb, r) = match excess {
        Excess::Node(_, r) => ("nodes", "have", r),
        Excess::Pod(_, r) => ("pods", "request", r),
    };
    format!(
        "the {who} up to this one {verb} more than {} {} in all, the largest total kube-engine \
         accepts",
        limit_text(r),
        s.resources.name(r),
    )
}

/// Refuses a snapshot whose totals pass [`MAX_TOTAL`]; `node_path` and `pod_path` say where a
/// node or pod was in the input.
pub(crate) fn check(
    s: &Snapshot,
    node_path: impl Fn(NodeId) -> String,
    pod_path: impl Fn(PodId) -> String,
) -> Result<(), InputError> {
    match first_excess(s) {
        None => Ok(()),
        Some(e @ Excess::Node(n, _)) => Err(InputError::new(node_path(n), describe(s, e))),
        Some(e @ Excess::Pod(p, _)) => Err(InputError::new(pod_path(p), describe(s, e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::parse_documents;

    fn parse(items: &[String]) -> Result<Snapshot, crate::Error> {
        let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
        parse_documents(&[doc.as_bytes()])
    }

    fn node(name: &str, allocatable: &str) -> String {
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"{name}"}},
                "status":{{"allocatable":{{{allocatable}}}}}}}"#
        )
    }

    fn pod(name: &str, requests: &str) -> String {
        format!(
            r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"a"}},
                "spec":{{"containers":[{{"name":"c","resources":{{"requests":{{{requests}}}}}}}]}}}}"#
        )
    }

    fn error(items: &[String]) -> String {
        match parse(items) {
            Err(crate::Error::Input(e)) => e.to_string(),
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn totals_up_to_the_limit_are_kept() {
        // 2^62 bytes is 4Ei; 2^62 milli-cores in two halves.
        let half_cpu = MAX_TOTAL / 2 / 1000;
        let s = parse(&[
            node("n1", r#""memory":"2Ei","cpu":"1""#),
            node("n2", r#""memory":"2Ei""#),
            pod("p1", &format!(r#""cpu":"{half_cpu}","memory":"0""#)),
            pod("p2", &format!(r#""cpu":"{half_cpu}","memory":"4Ei""#)),
        ])
        .unwrap();
        assert_eq!(first_excess(&s), None);
        let total = |r| (0..2).map(|n| s.nodes.allocatable.get(n, r)).sum::<i64>();
        assert_eq!(total(MEMORY), MAX_TOTAL);
    }

    #[test]
    fn the_node_that_passes_the_limit_is_named() {
        let e = error(&[
            node("n1", r#""memory":"4Ei""#),
            node("n2", r#""memory":"1""#),
            node("n3", r#""memory":"4Ei""#),
        ]);
        assert_eq!(
            e,
            "items[1]: the nodes up to this one have more than 4Ei (2^62) memory in all, \
             the largest total kube-engine accepts"
        );
        // One node alone past the limit: a capped 8Ei.
        let e = error(&[node("n1", r#""cpu":"8Ei""#)]);
        assert!(e.starts_with("items[0]: the nodes up to this one have more than 4611686018427387904m (2^62 milli-cores) cpu"), "{e}");
        // Extended resources too.
        assert!(error(&[
            node("n1", r#""example.com/x":"3Ei""#),
            node("n2", r#""example.com/x":"2Ei""#)
        ])
        .ends_with("(2^62) example.com/x in all, the largest total kube-engine accepts"));
    }

    #[test]
    fn the_pod_that_passes_the_limit_is_named() {
        let e = error(&[
            node("n1", r#""cpu":"1""#),
            pod("p1", r#""cpu":"5e15""#),
            pod("p2", r#""cpu":"5e15""#),
        ]);
        assert_eq!(
            e,
            "items[1]: the pods up to this one request more than 4611686018427387904m \
             (2^62 milli-cores) cpu in all, the largest total kube-engine accepts"
        );
        let e = error(&[
            pod("p1", r#""memory":"3Ei""#),
            pod("p2", r#""memory":"1Ei""#),
            pod("p3", r#""memory":"1""#),
        ]);
        assert!(
            e.starts_with("items[2]: the pods up to this one request more than 4Ei (2^62) memory"),
            "{e}"
        );
    }

    #[test]
    fn scoring_defaults_count_toward_the_limit() {
        // 4Ei exactly, plus a container with no memory request, which scores as 200Mi.
        let e = error(&[pod("p1", r#""memory":"4Ei""#), pod("p2", r#""cpu":"1""#)]);
        assert!(
            e.starts_with("items[1]: the pods up to this one request more than 4Ei (2^62) memory"),
            "{e}"
        );
    }
}
