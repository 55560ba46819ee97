//! NodeAffinity: required node affinity with every operator chooses the node.

mod common;
use common::resources::pod;
use common::{placed_on, reason, run, run_with, snap};

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

/// A profile's `NodeAffinityArgs.addedAffinity`, as the NodeAffinity plugin's own tests configure
/// it.
fn with_added(added: &str) -> Vec<kube_engine_core::schedule::framework::Profile> {
    let config = format!(
        r#"{{"kind":"KubeSchedulerConfiguration","profiles":[{{"schedulerName":"default-scheduler",
            "pluginConfig":[{{"name":"NodeAffinity","args":{{"addedAffinity":{added}}}}}]}}]}}"#
    );
    kube_engine_core::schedule::profile::profiles_from_json(&config).unwrap()
}

fn zoned(name: &str, zone: &str) -> String {
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"zone":"{zone}"}}}},
            "status":{{"allocatable":{{"cpu":"8","memory":"8Gi","pods":"110"}}}}}}"#
    )
}

#[test]
fn added_required_affinity_binds_every_pod_of_the_profile() {
    let added = r#"{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":
        [{"matchExpressions":[{"key":"zone","operator":"In","values":["b"]}]}]}}"#;
    let items = [
        zoned("a1", "a"),
        zoned("b1", "b"),
        pod("free", "1", "1Gi", ""),
        // The pod's own affinity must hold too: it asks for zone a, the profile for zone b.
        pod(
            "torn",
            "1",
            "1Gi",
            r#""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms":[{"matchExpressions":
                [{"key":"zone","operator":"In","values":["a"]}]}]}}},"#,
        ),
    ];
    let s = snap(&items);
    let pl = run_with(&s, &with_added(added));
    assert_eq!(placed_on(&s, &pl, "default/free").as_deref(), Some("b1"));
    assert_eq!(
        reason(&s, &pl, "default/torn"),
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
         1 node(s) didn't match scheduler-enforced node affinity."
    );
    // Without the args, both go to a node of their choice.
    let pl = run(&s);
    assert_eq!(placed_on(&s, &pl, "default/torn").as_deref(), Some("a1"));
}

#[test]
fn added_preferred_affinity_scores_beside_the_pods_own() {
    let added = r#"{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":50,
        "preference":{"matchExpressions":[{"key":"zone","operator":"In","values":["b"]}]}}]}"#;
    let items = [zoned("a1", "a"), zoned("b1", "b"), pod("p", "1", "1Gi", "")];
    let s = snap(&items);
    assert_eq!(
        placed_on(&s, &run_with(&s, &with_added(added)), "default/p").as_deref(),
        Some("b1")
    );
    // A heavier preference of the pod's own wins over the profile's.
    let own = r#""affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":
        [{"weight":100,"preference":{"matchExpressions":
        [{"key":"zone","operator":"In","values":["a"]}]}}]}},"#;
    let items = [
        zoned("a1", "a"),
        zoned("b1", "b"),
        pod("p", "1", "1Gi", own),
    ];
    let s = snap(&items);
    assert_eq!(
        placed_on(&s, &run_with(&s, &with_added(added)), "default/p").as_deref(),
        Some("a1")
    );
}

#[test]
fn node_affinity_args_are_checked() {
    let bad = r#"{"kind":"KubeSchedulerConfiguration","profiles":[{"pluginConfig":
        [{"name":"NodeAffinity","args":{"addedAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"Gt","values":["a"]}]}]}}}}]}]}"#;
    let err = kube_engine_core::schedule::profile::profiles_from_json(bad)
        .err()
        .expect("an invalid Gt value is refused");
    assert!(err.to_string().contains("NodeAffinity"), "{err}");
    let unknown = r#"{"kind":"KubeSchedulerConfiguration","profiles":[{"pluginConfig":
        [{"name":"NodeAffinity","args":{"addedAffinities":{}}}]}]}"#;
    let err = kube_engine_core::schedule::profile::profiles_from_json(unknown)
        .err()
        .expect("an unknown field is refused");
    assert!(err.to_string().contains("addedAffinities"), "{err}");
}

#[test]
fn terms_kube_scheduler_cannot_parse_or_satisfy_reject_the_pod() {
    let node = |name: &str| {
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"zone":"a"}}}},
                "status":{{"allocatable":{{"cpu":"8","memory":"8Gi","pods":"110"}}}}}}"#
        )
    };
    let required = |term: &str| {
        format!(
            r#""affinity":{{"nodeAffinity":{{"requiredDuringSchedulingIgnoredDuringExecution":
                {{"nodeSelectorTerms":[{term}]}}}}}},"#
        )
    };
    // A value that is no label value: upstream's selector does not parse, the term matches nothing.
    let invalid = r#"{"matchExpressions":[{"key":"zone","operator":"NotIn","values":["b c"]}]}"#;
    let s = snap(&[node("n1"), pod("p", "1", "1Gi", &required(invalid))]);
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    );
    // Node names whose intersection is empty: upstream's PreFilter rejects the pod outright.
    let conflict = r#"{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]},
        {"key":"metadata.name","operator":"In","values":["n2"]}]}"#;
    let s = snap(&[
        node("n1"),
        node("n2"),
        pod("p", "1", "1Gi", &required(conflict)),
    ]);
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        "0/2 nodes are available: pod affinity terms conflict."
    );
}
