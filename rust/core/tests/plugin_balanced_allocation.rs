//! NodeResourcesBalancedAllocation: a node whose cpu and memory would be used in equal
//! proportion scores higher, `(1 − std of the fractions) × 100`; best-effort pods are not scored.

mod common;
use common::resources::{node, pod};
use common::{placed_on, run_with, scores, snap};
use kube_engine_core::schedule::plugins::balanced_allocation::BalancedAllocation;
use kube_engine_core::schedule::profile::profiles_from_json;

#[test]
fn balanced_scores_hand_computed() {
    // Both nodes 8 cpu / 8Gi; a has 3 cpu / 3Gi in use, b 0 cpu / 4Gi. Pod: 1 cpu / 1Gi.
    // a: fractions 4/8 and 4/8, std 0 -> 100; b: 1/8 and 5/8, std |0.125 − 0.625| / 2 = 0.25
    // -> 75. (LeastAllocated would prefer b: (87 + 37) / 2 = 62 against 50.)
    let s = snap(&[
        node("a", "8", "8Gi", ""),
        node("b", "8", "8Gi", ""),
        pod("on-a", "3", "3Gi", r#""nodeName":"a","#),
        pod("on-b", "0", "4Gi", r#""nodeName":"b","#),
        pod("p", "1", "1Gi", ""),
        pod("best-effort", "0", "0", ""),
    ]);
    let plugin = BalancedAllocation::new(Default::default());
    let (raw, normalized) = scores(&s, &plugin, "default/p", &["a", "b"]).unwrap();
    assert_eq!(raw, [100, 75]);
    // No NormalizeScore: the scores are final.
    assert_eq!(normalized, raw);
    assert!(scores(&s, &plugin, "default/best-effort", &["a", "b"]).is_none());

    let cfg = r#"{"profiles":[{"plugins":{"score":{"disabled":[{"name":"*"}],
        "enabled":[{"name":"NodeResourcesBalancedAllocation","weight":1}]}}}]}"#;
    let pl = run_with(&s, &profiles_from_json(cfg).unwrap());
    assert_eq!(placed_on(&s, &pl, "default/p").as_deref(), Some("a"));
}

#[test]
fn nvidia_gpu_in_the_args_counts_like_any_scalar_resource() {
    // Both nodes 8 cpu / 8Gi / 4 GPUs with 4 cpu / 4Gi in use; g2's pod also holds 2 GPUs. The
    // pod asks for 2 cpu / 2Gi / 1 GPU. g1: fractions 0.75, 0.75, 1/4: std 0.2357 -> 76;
    // g2: 0.75, 0.75, 3/4: std 0 -> 100. Without nvidia.com/gpu in the args both are 100.
    let gpu_node = |name: &str| {
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"{name}"}},"status":{{"allocatable":
                {{"cpu":"8","memory":"8Gi","pods":"110","nvidia.com/gpu":"4"}}}}}}"#
        )
    };
    let gpu_pod = |name: &str, cpu: &str, mem: &str, gpus: u32, spec: &str| {
        format!(
            r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},"spec":{{{spec}
                "containers":[{{"name":"c","resources":{{"requests":{{"cpu":"{cpu}","memory":"{mem}",
                "nvidia.com/gpu":"{gpus}"}},"limits":{{"nvidia.com/gpu":"{gpus}"}}}}}}]}}}}"#
        )
    };
    let s = snap(&[
        gpu_node("g1"),
        gpu_node("g2"),
        pod("on-g1", "4", "4Gi", r#""nodeName":"g1","#),
        gpu_pod("on-g2", "4", "4Gi", 2, r#""nodeName":"g2","#),
        gpu_pod("p", "2", "2Gi", 1, ""),
        pod("no-gpu", "2", "2Gi", ""),
    ]);
    let args = r#"{"resources":[{"name":"cpu","weight":1},{"name":"memory","weight":1},
        {"name":"nvidia.com/gpu","weight":1}]}"#;
    let with_gpu = BalancedAllocation::new(serde_json::from_str(args).unwrap());
    let (raw, _) = scores(&s, &with_gpu, "default/p", &["g1", "g2"]).unwrap();
    assert_eq!(raw, [76, 100]);
    let plain = BalancedAllocation::new(Default::default());
    assert_eq!(
        scores(&s, &plain, "default/p", &["g1", "g2"]).unwrap().0,
        [100, 100]
    );
    // A pod without GPUs: nvidia.com/gpu is a resource it does not ask for, so it does not count.
    assert_eq!(
        scores(&s, &with_gpu, "default/no-gpu", &["g1", "g2"])
            .unwrap()
            .0,
        scores(&s, &plain, "default/no-gpu", &["g1", "g2"])
            .unwrap()
            .0
    );

    let cfg = format!(
        r#"{{"profiles":[{{"plugins":{{"score":{{"disabled":[{{"name":"*"}}],
        "enabled":[{{"name":"NodeResourcesBalancedAllocation","weight":1}}]}}}},
        "pluginConfig":[{{"name":"NodeResourcesBalancedAllocation","args":{args}}}]}}]}}"#
    );
    let pl = run_with(&s, &profiles_from_json(&cfg).unwrap());
    assert_eq!(placed_on(&s, &pl, "default/p").as_deref(), Some("g2"));
}
