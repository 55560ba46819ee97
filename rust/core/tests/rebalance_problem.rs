//! The rebalance problem: which pods are pinned and why, classes, candidates, budgets.

use kube_engine_core::model::pod::LocalVolumes;
use kube_engine_core::rebalance::{problem, Pin, PinOptions, Problem};
use kube_engine_core::schedule::profile::default_profile;
use kube_engine_core::snapshot::{parse_documents, OptOut};
use kube_engine_core::Snapshot;

fn node(name: &str, cpu: &str, extra: &str) -> String {
    format!(
        r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}"}}}},
            "spec":{{{extra}}},"status":{{"allocatable":{{"cpu":"{cpu}","memory":"16Gi","pods":"110"}}}}}}"#
    )
}

/// A running pod bound to `node`; `meta` and `spec` add fields (with trailing commas).
fn pod(name: &str, node: &str, cpu: &str, meta: &str, spec: &str) -> String {
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default",{meta}"labels":{{"app":"web"}}}},
            "spec":{{"nodeName":"{node}",{spec}"containers":[{{"name":"c","resources":{{"requests":{{"cpu":"{cpu}","memory":"1Gi"}}}}}}]}},
            "status":{{"phase":"Running"}}}}"#
    )
}

fn owned(kind: &str, name: &str) -> String {
    format!(
        r#""ownerReferences":[{{"apiVersion":"apps/v1","kind":"{kind}","name":"{name}","uid":"uid-{name}","controller":true}}],"#
    )
}

fn snap(items: &[String]) -> Snapshot {
    let doc = format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(","));
    parse_documents(&[doc.as_bytes()]).unwrap()
}

fn names(s: &Snapshot, pods: &[u32]) -> Vec<String> {
    pods.iter()
        .map(|&p| s.pods.name[p as usize].clone())
        .collect()
}

fn solve(s: &Snapshot, opts: PinOptions) -> Problem {
    problem(s, &default_profile(), &opts)
}

#[test]
fn annotations_opt_pods_out_and_in_and_control_planes_stay() {
    let rs = owned("ReplicaSet", "web-1");
    let annotated = |name: &str, key: &str, value: &str, meta: &str, spec: &str| {
        pod(
            name,
            "a",
            "1",
            &format!(r#"{meta}"annotations":{{"{key}":"{value}"}},"#),
            spec,
        )
    };
    let scratch = r#""volumes":[{"name":"t","emptyDir":{}}],"#;
    let s = snap(&[
        node("a", "16", ""),
        node("cp", "16", "").replace(
            r#""kubernetes.io/hostname":"cp""#,
            r#""kubernetes.io/hostname":"cp","node-role.kubernetes.io/control-plane":"""#,
        ),
        annotated(
            "ca",
            "cluster-autoscaler.kubernetes.io/safe-to-evict",
            "false",
            &rs,
            "",
        ),
        annotated("karpenter", "karpenter.sh/do-not-disrupt", "true", &rs, ""),
        // Opt-outs win over an opt-in.
        pod(
            "both",
            "a",
            "1",
            &format!(
                r#"{rs}"annotations":{{"kube-engine.io/evict":"false","descheduler.alpha.kubernetes.io/evict":""}},"#
            ),
            "",
        ),
        // The descheduler's annotation lifts the usual protections, whatever its value.
        annotated(
            "deschedule-bare",
            "descheduler.alpha.kubernetes.io/evict",
            "",
            "",
            "",
        ),
        annotated(
            "deschedule-critical",
            "descheduler.alpha.kubernetes.io/evict",
            "x",
            &rs,
            r#""priority":2000001000,"#,
        ),
        // The cluster autoscaler's safe-to-evict "true" lifts local storage and no controller.
        annotated(
            "ca-scratch",
            "cluster-autoscaler.kubernetes.io/safe-to-evict",
            "true",
            "",
            scratch,
        ),
        pod("on-cp", "cp", "1", &rs, ""),
    ]);
    let pr = solve(&s, PinOptions::default());
    let pins: Vec<(String, Pin)> = pr
        .pinned
        .iter()
        .map(|&(p, why)| (s.pods.name[p as usize].clone(), why))
        .collect();
    assert_eq!(
        pins,
        [
            ("ca".to_string(), Pin::Annotated(OptOut::SafeToEvict)),
            (
                "karpenter".to_string(),
                Pin::Annotated(OptOut::DoNotDisrupt)
            ),
            ("both".to_string(), Pin::Annotated(OptOut::KubeEngine)),
            ("on-cp".to_string(), Pin::ControlPlane),
        ]
    );
    let both = s.pods.id("default/both").unwrap() as usize;
    assert!(s.pods.opt_in[both], "the fixture as meant");
    // The opted-in pods move: a bare one, a critical one, one with local storage.
    let movable: Vec<String> = pr.classes.iter().flat_map(|c| names(&s, &c.pods)).collect();
    assert_eq!(movable.len(), 3, "{movable:?}");
    assert_eq!(
        Pin::Annotated(OptOut::DoNotDisrupt).as_str(),
        "annotated karpenter.sh/do-not-disrupt: \"true\""
    );
}

#[test]
fn pins_say_why() {
    let rs = owned("ReplicaSet", "web-1");
    let s = snap(&[
        node("a", "8", ""),
        pod("ds", "a", "1", &owned("DaemonSet", "agent"), ""),
        pod(
            "mirror",
            "a",
            "1",
            r#""annotations":{"kubernetes.io/config.mirror":"x"},"#,
            "",
        ),
        pod("critical", "a", "1", &rs, r#""priority":2000001000,"#),
        pod(
            "keep",
            "a",
            "1",
            &format!(r#"{rs}"annotations":{{"kube-engine.io/evict":"false"}},"#),
            "",
        ),
        pod(
            "scratch",
            "a",
            "1",
            &rs,
            r#""volumes":[{"name":"t","emptyDir":{}}],"#,
        ),
        pod("bare", "a", "1", "", ""),
        pod("web", "a", "1", &rs, ""),
    ]);
    let pr = solve(&s, PinOptions::default());
    let pins: Vec<(String, Pin)> = pr
        .pinned
        .iter()
        .map(|&(p, why)| (s.pods.name[p as usize].clone(), why))
        .collect();
    let expect = [
        ("ds", Pin::DaemonSet),
        ("mirror", Pin::Mirror),
        ("critical", Pin::SystemCritical),
        ("keep", Pin::Annotated(OptOut::KubeEngine)),
        ("scratch", Pin::LocalStorage),
        ("bare", Pin::Bare),
    ];
    assert_eq!(
        pins,
        expect.map(|(n, w)| (n.to_string(), w)).to_vec(),
        "pinned pods and reasons"
    );
    assert_eq!(pr.classes.len(), 1);
    assert_eq!(names(&s, &pr.classes[0].pods), ["web"]);
    // Allowed, local storage moves too.
    let pr = solve(
        &s,
        PinOptions {
            allow_local_storage: LocalVolumes::ALL,
            allow_bare: true,
            ..Default::default()
        },
    );
    assert!(pr
        .pinned
        .iter()
        .all(|&(_, why)| why != Pin::LocalStorage && why != Pin::Bare));
    assert_eq!(pr.classes.iter().map(|c| c.pods.len()).sum::<usize>(), 3);
}

#[test]
fn classes_group_interchangeable_pods() {
    let rs = owned("ReplicaSet", "web-1");
    let other = owned("ReplicaSet", "api-1");
    let s = snap(&[
        node("a", "8", ""),
        node("b", "8", ""),
        pod("web-x", "a", "1", &rs, ""),
        pod("web-y", "b", "1", &rs, ""),
        pod("api-x", "a", "1", &other, ""),
        // Same controller, another request (e.g. a vertical autoscaler's change): its own class.
        pod("web-big", "a", "2", &rs, ""),
    ]);
    let pr = solve(&s, PinOptions::default());
    let classes: Vec<Vec<String>> = pr.classes.iter().map(|c| names(&s, &c.pods)).collect();
    assert_eq!(
        classes,
        [vec!["web-x", "web-y"], vec!["api-x"], vec!["web-big"]]
    );
}

#[test]
fn candidates_come_from_the_filters_with_only_pinned_pods_placed() {
    let rs = owned("ReplicaSet", "web-1");
    let taint = r#""taints":[{"key":"gpu","value":"true","effect":"NoSchedule"}]"#;
    let s = snap(&[
        node("small", "1", ""),
        node("tainted", "8", taint),
        node("cordoned", "8", r#""unschedulable":true"#),
        node("busy", "4", ""),
        node("free", "4", ""),
        node("also-free", "4", ""),
        // busy holds 3 pinned cpus: 1 left, too little for a 2-cpu pod.
        pod("agent", "busy", "3", &owned("DaemonSet", "agent"), ""),
        pod("web", "free", "2", &rs, ""),
    ]);
    let pr = solve(&s, PinOptions::default());
    assert_eq!(pr.classes.len(), 1);
    let cand: Vec<&str> = pr.classes[0]
        .candidates
        .iter()
        .map(|&n| s.nodes.name[n as usize].as_str())
        .collect();
    // NodeName does not hold a moved pod to its node; the others are filtered out.
    assert_eq!(cand, ["free", "also-free"]);
    let busy = s.nodes.name.iter().position(|n| n == "busy").unwrap();
    let cpu = s.resources.get("cpu").unwrap();
    assert_eq!(
        pr.free.get(busy, cpu),
        1000,
        "4 cpus less the pinned 3, in milli"
    );
}

#[test]
fn interacting_classes_are_marked() {
    let rs = owned("ReplicaSet", "web-1");
    let anti = r#""affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[
        {"labelSelector":{"matchLabels":{"app":"web"}},"topologyKey":"kubernetes.io/hostname"}]}},"#;
    let s = snap(&[
        node("a", "8", ""),
        node("b", "8", ""),
        pod("web", "a", "1", &rs, anti),
        pod("plain", "b", "1", &owned("ReplicaSet", "other"), ""),
    ]);
    let pr = solve(&s, PinOptions::default());
    let flags: Vec<(Vec<String>, bool)> = pr
        .classes
        .iter()
        .map(|c| (names(&s, &c.pods), c.interacts))
        .collect();
    assert_eq!(
        flags,
        [
            (vec!["web".to_string()], true),
            (vec!["plain".to_string()], false)
        ]
    );
}

#[test]
fn budgets_from_status_or_spec() {
    let rs = owned("ReplicaSet", "web-1");
    let pdb = |name: &str, spec: &str, status: &str| {
        format!(
            r#"{{"kind":"PodDisruptionBudget","metadata":{{"name":"{name}","namespace":"default"}},
                "spec":{{{spec}"selector":{{"matchLabels":{{"app":"web"}}}}}}{status}}}"#
        )
    };
    let s = snap(&[
        node("a", "8", ""),
        pod("w1", "a", "1", &rs, ""),
        pod("w2", "a", "1", &rs, ""),
        pod("w3", "a", "1", &rs, ""),
        pdb(
            "live",
            r#""minAvailable":1,"#,
            r#","status":{"disruptionsAllowed":1}"#,
        ),
        // 3 running pods, at least 1 must stay: 2 may go.
        pdb("min", r#""minAvailable":1,"#, ""),
        // 34% of 3 rounds up to 2 unavailable.
        pdb("max", r#""maxUnavailable":"34%","#, ""),
        pdb("neither", "", ""),
    ]);
    let pr = solve(&s, PinOptions::default());
    let allowed: Vec<u32> = pr.budgets.iter().map(|b| b.allowed).collect();
    assert_eq!(allowed, [1, 2, 2, 0]);
    assert!(pr.budgets.iter().all(|b| b.pods.len() == 3));
}

mod drain {
    use super::*;
    use kube_engine_core::rebalance::{drain, DrainOptions};

    fn nodes_of(s: &Snapshot, ns: &[u32]) -> Vec<String> {
        ns.iter()
            .map(|&n| s.nodes.name[n as usize].clone())
            .collect()
    }

    fn three_light_nodes(extra: &[String]) -> Snapshot {
        let rs = owned("ReplicaSet", "web-1");
        let mut items = vec![
            node("a", "4", ""),
            node("b", "4", ""),
            node("c", "4", ""),
            pod("w1", "a", "1", &rs, ""),
            pod("w2", "b", "1", &rs, ""),
            pod("w3", "c", "2", &rs, ""),
        ];
        items.extend_from_slice(extra);
        snap(&items)
    }

    #[test]
    fn packs_light_nodes_onto_one() {
        let s = three_light_nodes(&[]);
        let plan = drain(&s, DrainOptions::default()).unwrap();
        // a and b hold one 1-cpu pod each and go first; c (2 cpus) takes both.
        assert_eq!(nodes_of(&s, &plan.freed), ["a", "b"]);
        assert_eq!(plan.moves.len(), 2);
        assert!(plan
            .moves
            .iter()
            .all(|m| s.nodes.name[m.to as usize] == "c"));
    }

    #[test]
    fn move_and_disruption_budgets_hold() {
        let s = three_light_nodes(&[]);
        let one = DrainOptions {
            max_moves: Some(1),
            ..Default::default()
        };
        let plan = drain(&s, one).unwrap();
        assert_eq!(plan.moves.len(), 1);
        assert_eq!(plan.freed.len(), 1);
        let pdb = r#"{"kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"default"},
            "spec":{"selector":{"matchLabels":{"app":"web"}}},"status":{"disruptionsAllowed":0}}"#;
        let s = three_light_nodes(&[pdb.to_string()]);
        let plan = drain(&s, DrainOptions::default()).unwrap();
        assert!(plan.moves.is_empty() && plan.freed.is_empty());
    }

    #[test]
    fn a_passed_deadline_stops_the_drain_with_nothing_half_done() {
        let s = three_light_nodes(&[]);
        let full = drain(&s, DrainOptions::default()).unwrap();
        assert!(full.complete && !full.freed.is_empty());
        let late = DrainOptions {
            deadline: Some(std::time::Instant::now()),
            ..Default::default()
        };
        let stopped = drain(&s, late).unwrap();
        assert!(!stopped.complete);
        assert!(stopped.moves.is_empty() && stopped.freed.is_empty());
        assert_eq!(stopped.assignment, s.current);
    }

    #[test]
    fn kept_nodes_keep_their_pods_and_excluded_nodes_take_none() {
        let s = three_light_nodes(&[]);
        let id = |name: &str| s.nodes.id(name).unwrap() as usize;
        let mark = |names: &[&str]| {
            let mut v = vec![false; s.nodes.len()];
            for n in names {
                v[id(n)] = true;
            }
            v
        };
        let free = drain(&s, DrainOptions::default()).unwrap();
        assert_eq!(nodes_of(&s, &free.freed), ["a", "b"]);
        // Keeping a and excluding c: a keeps its pod and takes the others; c still empties.
        let opts = DrainOptions {
            pins: PinOptions {
                keep: mark(&["a"]),
                exclude: mark(&["c"]),
                ..Default::default()
            },
            ..Default::default()
        };
        let plan = drain(&s, opts.clone()).unwrap();
        assert_eq!(nodes_of(&s, &plan.freed), ["b", "c"]);
        assert!(plan.moves.iter().all(|m| m.to as usize == id("a")));
        let pr = problem(&s, &default_profile(), &opts.pins);
        assert!(pr.pinned.iter().all(|&(_, why)| why == Pin::NodeKept));
        assert!(pr
            .classes
            .iter()
            .all(|c| !c.candidates.contains(&(id("c") as u32))));
    }

    #[test]
    fn pinned_pods_keep_their_node_but_daemons_do_not() {
        let s = three_light_nodes(&[
            pod("bare", "a", "1", "", ""),
            pod("agent", "b", "1", &owned("DaemonSet", "agent"), ""),
        ]);
        let plan = drain(&s, DrainOptions::default()).unwrap();
        // a keeps its bare pod, so it stays in use; b empties (its DaemonSet pod goes with it).
        assert!(!nodes_of(&s, &plan.freed).contains(&"a".to_string()));
        assert!(nodes_of(&s, &plan.freed).contains(&"b".to_string()));
        assert!(plan
            .moves
            .iter()
            .all(|m| s.pods.name[m.pod as usize] != "agent"));
    }

    #[test]
    fn nothing_fits_nothing_moves() {
        // Each node is full: no pod can move anywhere.
        let rs = owned("ReplicaSet", "web-1");
        let s = snap(&[
            node("a", "2", ""),
            node("b", "2", ""),
            pod("w1", "a", "2", &rs, ""),
            pod("w2", "b", "2", &rs, ""),
        ]);
        let plan = drain(&s, DrainOptions::default()).unwrap();
        assert!(plan.moves.is_empty() && plan.freed.is_empty());
        assert_eq!(plan.assignment, s.current);
    }

    #[test]
    fn moves_do_not_break_other_pods_spread() {
        // web-a spreads over zones (maxSkew 1) counting every app=web pod, web-b's too. Each
        // zone holds one of each; emptying a web-b node by moving its pod to the other zone
        // would skew web-a's spread, so such a move must not be in the plan.
        let zone = |name: &str, z: &str| {
            format!(
                r#"{{"kind":"Node","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}","topology.kubernetes.io/zone":"{z}"}}}},
                    "status":{{"allocatable":{{"cpu":"4","memory":"16Gi","pods":"110"}}}}}}"#
            )
        };
        let spread = r#""topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone",
            "whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app":"web"}}}],"#;
        let (a, b) = (owned("ReplicaSet", "web-a"), owned("ReplicaSet", "web-b"));
        let s = snap(&[
            zone("a1", "z1"),
            zone("a2", "z1"),
            zone("b1", "z2"),
            zone("b2", "z2"),
            pod("spread-1", "a1", "2", &a, spread),
            pod("spread-2", "b1", "2", &a, spread),
            pod("plain-1", "a2", "1", &b, ""),
            pod("plain-2", "b2", "1", &b, ""),
        ]);
        let plan = drain(&s, DrainOptions::default()).unwrap();
        let zone_of = |n: u32| {
            if s.nodes.name[n as usize].starts_with('a') {
                1
            } else {
                2
            }
        };
        for m in &plan.moves {
            assert_eq!(
                zone_of(m.from),
                zone_of(m.to),
                "{} left its zone",
                s.pods.name[m.pod as usize]
            );
        }
        assert_eq!(plan.freed.len(), 2, "one node per zone is enough");
    }
}

#[test]
fn candidates_follow_node_constraints_and_demand_per_class() {
    let only_b = r#""nodeSelector":{"kubernetes.io/hostname":"b"},"#;
    // Two required names no node has both of: upstream's PreFilter rejects the pod outright.
    let conflicting = r#""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["a"]},
        {"key":"metadata.name","operator":"In","values":["b"]}]}]}}},"#;
    let rs = |name: &str| owned("ReplicaSet", name);
    let s = snap(&[
        node("a", "4", ""),
        node("b", "4", ""),
        node("c", "4", ""),
        pod("small", "a", "1", &rs("small"), ""),
        pod("to-b", "a", "1", &rs("to-b"), only_b),
        pod("none", "a", "1", &rs("none"), conflicting),
        // Pinned pods fill b to 3 of 4 cpus: the 2-cpu pods fit on a and c only.
        pod("ds", "b", "3", &owned("DaemonSet", "agent"), ""),
        pod("big", "c", "2", &rs("big"), ""),
        pod("big-to-b", "c", "2", &rs("big-to-b"), only_b),
    ]);
    let pr = solve(&s, PinOptions::default());
    let by_pod = |name: &str| -> Vec<String> {
        let class = pr
            .classes
            .iter()
            .find(|c| names(&s, &c.pods) == [name])
            .unwrap_or_else(|| panic!("a class of {name}"));
        class
            .candidates
            .iter()
            .map(|&n| s.nodes.name[n as usize].clone())
            .collect()
    };
    assert_eq!(by_pod("small"), ["a", "b", "c"]);
    assert_eq!(by_pod("to-b"), ["b"]);
    assert!(by_pod("none").is_empty());
    assert_eq!(by_pod("big"), ["a", "c"]);
    assert!(by_pod("big-to-b").is_empty());
}
