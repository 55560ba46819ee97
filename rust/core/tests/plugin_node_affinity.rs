//! NodeAffinity: required node affinity with every operator chooses the node.

mod common;
use common::resources::pod;
use common::{placed_on, reason, run, snap};

#[test]
fn node_affinity_operators_choose_the_node() {
    let labelled = |name: &str, labels: &str| {
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{{labels}}}}},
                "status":{{"allocatable":{{"cpu":"8","memory":"8Gi","pods":"110"}}}}}}"#
        )
    };
    let affinity = |expr: &str| {
        format!(
            r#""affinity":{{"nodeAffinity":{{"requiredDuringSchedulingIgnoredDuringExecution":
                {{"nodeSelectorTerms":[{{"matchExpressions":[{expr}]}}]}}}}}},"#
        )
    };
    let nodes = [
        labelled("gpu-16", r#""cores":"16","gpu":"a100""#),
        labelled("plain-4", r#""cores":"4""#),
    ];
    let cases = [
        (
            r#"{"key":"gpu","operator":"In","values":["a100"]}"#,
            "gpu-16",
        ),
        (
            r#"{"key":"gpu","operator":"NotIn","values":["a100"]}"#,
            "plain-4",
        ),
        (r#"{"key":"gpu","operator":"Exists"}"#, "gpu-16"),
        (r#"{"key":"gpu","operator":"DoesNotExist"}"#, "plain-4"),
        (
            r#"{"key":"cores","operator":"Gt","values":["8"]}"#,
            "gpu-16",
        ),
        (
            r#"{"key":"cores","operator":"Lt","values":["8"]}"#,
            "plain-4",
        ),
    ];
    for (expr, want) in cases {
        let mut items = nodes.to_vec();
        items.push(pod("p", "1", "1Gi", &affinity(expr)));
        let s = snap(&items);
        assert_eq!(
            placed_on(&s, &run(&s), "default/p").as_deref(),
            Some(want),
            "{expr}"
        );
    }
    let mut items = nodes.to_vec();
    items.push(pod(
        "p",
        "1",
        "1Gi",
        &affinity(r#"{"key":"cores","operator":"Gt","values":["64"]}"#),
    ));
    let s = snap(&items);
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    );
}
