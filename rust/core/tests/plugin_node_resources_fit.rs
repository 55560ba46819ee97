//! NodeResourcesFit: the fit (cpu, memory, init containers, GPUs), its reasons, and its scoring
//! strategies, including the straight passes over many nodes that the resource scores share.

mod common;
use common::resources::{node, pod};
use common::{placed_on, reason, run, snap};
use kube_engine_core::schedule::framework::Cycle;
use kube_engine_core::schedule::profile::{default_profile, profiles_from_json};
use kube_engine_core::schedule::state::ClusterState;
use kube_engine_core::schedule::{schedule, Order};

#[test]
fn resource_reasons_and_cordoned_nodes() {
    let s = snap(&[
        node("small-cpu", "1", "64Gi", ""),
        node("small-mem", "64", "1Gi", ""),
        node("cordoned", "64", "64Gi", r#""unschedulable":true"#),
        pod("big", "2", "2Gi", ""),
    ]);
    assert_eq!(
        reason(&s, &run(&s), "default/big"),
        "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 node(s) were unschedulable."
    );
}

#[test]
fn init_containers_count_in_the_fit() {
    // The app needs 1 cpu but its init container 3: a 2-cpu node cannot take it.
    let init = r#""initContainers":[{"name":"i","resources":{"requests":{"cpu":"3"}}}],"#;
    let s = snap(&[node("n", "2", "8Gi", ""), pod("p", "1", "1Gi", init)]);
    assert_eq!(
        reason(&s, &run(&s), "default/p"),
        "0/1 nodes are available: 1 Insufficient cpu."
    );
}

#[test]
fn most_allocated_packs_and_weights_apply() {
    let cfg = r#"{"profiles":[{"plugins":{"score":{"disabled":[{"name":"*"}],
                    "enabled":[{"name":"NodeResourcesFit","weight":1}]}},
                  "pluginConfig":[{"name":"NodeResourcesFit","args":{"scoringStrategy":{"type":"MostAllocated",
                    "resources":[{"name":"cpu","weight":3},{"name":"memory","weight":1}]}}}]}]}"#;
    let profiles = profiles_from_json(cfg).unwrap();
    let s = snap(&[
        node("a", "4", "8Gi", ""),
        node("b", "4", "8Gi", ""),
        pod("used", "2", "1Gi", "").replace(r#""spec":{"#, r#""spec":{"nodeName":"b","#),
        pod("p", "1", "1Gi", ""),
    ]);
    let pl = schedule(&s, None, &profiles, Order::Input, 0).unwrap();
    assert_eq!(placed_on(&s, &pl, "default/p").as_deref(), Some("b"));
}

#[test]
fn gpu_fit_and_devices() {
    let g = r#"{"kind":"Node","metadata":{"name":"g"},"status":{"allocatable":{"cpu":"8","memory":"8Gi","pods":"110","nvidia.com/gpu":"2"}}}"#;
    let share = |name: &str, m: &str| {
        format!(
            r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
                "spec":{{"containers":[{{"name":"c","resources":{{"requests":{{"kube-engine.io/gpu-milli":"{m}"}}}}}}]}}}}"#
        )
    };
    let s = snap(&[
        g.to_string(),
        share("a", "600"),
        share("b", "600"),
        share("c", "300"),
        share("d", "600"),
    ]);
    let pl = run(&s);
    let dev = |name: &str| {
        let p = s.pods.id(name).unwrap();
        pl.placed.iter().find(|x| x.0 == p).map(|x| x.2)
    };
    // Best fit: a on device 0, b on device 1, c joins the fuller one that fits (either 400 left).
    assert_eq!(dev("default/a"), Some(0b01));
    assert_eq!(dev("default/b"), Some(0b10));
    assert!(dev("default/c").is_some());
    assert_eq!(
        reason(&s, &pl, "default/d"),
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    );
}

/// The resource scores' straight passes over many nodes (cpu and memory read from the nodes'
/// rooms, arithmetic without overflow checks) give each node what the general per-node score
/// gives it, including nodes too big for the unchecked arithmetic, empty ones and full ones.
#[test]
fn batch_resource_scores_agree_with_per_node_scores() {
    let sizes = [
        ("4", "8Gi"),
        ("3500m", "200Pi"), // memory × 100 past i64::MAX: the checked path
        ("0", "8Gi"),       // no cpu: the general path
        ("64", "512Gi"),
        ("2", "1Gi"),
        ("9000000", "3Ei"),
    ];
    let mut items: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, (cpu, mem))| node(&format!("n{i}"), cpu, mem, ""))
        .collect();
    // n5's memory in use plus the 2Ei asked for fills it to the byte; the snapshot's totals are
    // at most 2^62 (4Ei), so no sum here can pass i64::MAX.
    for (i, (on, cpu, mem)) in [
        ("n0", "1", "6Gi"),
        ("n1", "3", "150Pi"),
        ("n2", "10", "100Gi"),
        ("n3", "2", "1Gi"),
        ("n5", "1", "1Ei"),
    ]
    .iter()
    .enumerate()
    {
        let spec = format!(r#""nodeName":"{on}","#);
        items.push(pod(&format!("used{i}"), cpu, mem, &spec));
    }
    let demands = [
        ("1", "1Gi"),
        ("100m", "3Pi"),
        ("0", "0"),
        ("5", "2Ei"),
        ("250m", "1"),
    ];
    for (i, (cpu, mem)) in demands.iter().enumerate() {
        items.push(pod(&format!("p{i}"), cpu, mem, ""));
    }
    let s = snap(&items);
    let state = ClusterState::new(&s, &s.current);
    let nodes: Vec<u32> = (0..s.nodes.len() as u32).collect();
    // Each strategy with weights that average by a shift (1 + 1) and by a division (3 + 2).
    let strategy = |kind: &str, weights: [u32; 2]| {
        let json = format!(
            r#"{{"profiles":[{{"pluginConfig":[{{"name":"NodeResourcesFit","args":{{"scoringStrategy":
            {{"type":"{kind}","resources":[{{"name":"cpu","weight":{}}},{{"name":"memory","weight":{}}}]}}}}}}]}}]}}"#,
            weights[0], weights[1]
        );
        profiles_from_json(&json).unwrap().pop().unwrap()
    };
    let profiles = [
        default_profile(),
        strategy("LeastAllocated", [3, 2]),
        strategy("MostAllocated", [1, 1]),
        strategy("MostAllocated", [3, 2]),
    ];
    let mut checked = 0;
    for profile in profiles {
        for (i, _) in demands.iter().enumerate() {
            let p = s.pods.id(&format!("default/p{i}")).unwrap();
            let cx = Cycle::new(&state, p);
            for (plugin, _) in &profile.scores {
                if !plugin.name().starts_with("NodeResources") {
                    continue;
                }
                let kube_engine_core::schedule::framework::PreScore::Run(data) =
                    plugin.pre_score(&cx, &nodes)
                else {
                    continue;
                };
                let mut batch = vec![0; nodes.len()];
                plugin.score_all(&cx, &data, &nodes, &mut batch);
                let one: Vec<i64> = nodes.iter().map(|&n| plugin.score(&cx, &data, n)).collect();
                assert_eq!(batch, one, "{} for p{i}", plugin.name());
                checked += 1;
            }
        }
    }
    assert!(checked >= 36, "{checked}");
}
