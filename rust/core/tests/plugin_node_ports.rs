//! NodePorts: a host port (IP, protocol, port) is used by one pod per node; `0.0.0.0` (the
//! default) clashes with every address.

mod common;
use common::resources::node;
use common::{placed_on, reason, run, snap, verdicts, OK};
use kube_engine_core::schedule::plugins::node_ports::NodePorts;

const TAKEN: &str = "node(s) didn't have free ports for the requested pod ports";

/// A pod in `default` whose container asks for a host port (`port`: the members of its
/// `ports` entry besides `containerPort`), bound to `node` if given.
fn with_port(name: &str, node: Option<&str>, port: &str) -> String {
    let bound = node
        .map(|n| format!(r#""nodeName":"{n}","#))
        .unwrap_or_default();
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
            "spec":{{{bound}"containers":[{{"name":"c","ports":[{{"containerPort":80,{port}}}],
            "resources":{{"requests":{{"cpu":"100m","memory":"64Mi"}}}}}}]}}}}"#
    )
}

#[test]
fn a_host_port_goes_to_one_pod_per_node() {
    let s = snap(&[
        node("n1", "4", "8Gi", ""),
        node("n2", "4", "8Gi", ""),
        with_port("a", None, r#""hostPort":8080"#),
        with_port("b", None, r#""hostPort":8080"#),
        with_port("c", None, r#""hostPort":8080"#),
    ]);
    let pl = run(&s);
    let a = placed_on(&s, &pl, "default/a").unwrap();
    let b = placed_on(&s, &pl, "default/b").unwrap();
    assert_ne!(a, b);
    assert_eq!(
        reason(&s, &pl, "default/c"),
        format!("0/2 nodes are available: 2 {TAKEN}.")
    );
}

#[test]
fn ports_clash_on_the_same_address_and_protocol() {
    let s = snap(&[
        node("n1", "4", "8Gi", ""),
        with_port("used", Some("n1"), r#""hostPort":8080,"hostIP":"10.0.0.1""#),
        with_port("same", None, r#""hostPort":8080,"hostIP":"10.0.0.1""#),
        with_port("any-address", None, r#""hostPort":8080"#),
        with_port(
            "other-address",
            None,
            r#""hostPort":8080,"hostIP":"10.0.0.2""#,
        ),
        with_port(
            "udp",
            None,
            r#""hostPort":8080,"hostIP":"10.0.0.1","protocol":"UDP""#,
        ),
        with_port("other-port", None, r#""hostPort":8081,"hostIP":"10.0.0.1""#),
        with_port("no-host-port", None, r#""protocol":"TCP""#),
    ]);
    let verdict = |pod: &str| verdicts(&s, &NodePorts, &format!("default/{pod}"));
    assert_eq!(verdict("same").unwrap(), [TAKEN]);
    assert_eq!(verdict("any-address").unwrap(), [TAKEN]);
    assert_eq!(verdict("other-address").unwrap(), [OK]);
    assert_eq!(verdict("udp").unwrap(), [OK]);
    assert_eq!(verdict("other-port").unwrap(), [OK]);
    // A pod without host ports skips the filter.
    assert!(verdict("no-host-port").is_none());
}
