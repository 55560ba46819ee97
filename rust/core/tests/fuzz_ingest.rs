//! Fuzzing the core: ingestion never panics, whatever the bytes (plain, gzip, truncated gzip,
//! Kubernetes-shaped JSON with hostile values put in), and returns a snapshot or an input error;
//! scheduling and evaluating whatever it accepts never panics either. (The quantity parser has
//! its own properties in `quantity.rs`.)
//!
//! By default a few hundred cases of a fixed seed, so `cargo test` runs the same cases every time;
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` change them (`make fuzz` sets both). A failure prints
//! the input proptest shrank it to.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use kube_engine_core::error::Error;
use kube_engine_core::metrics::evaluate;
use kube_engine_core::schedule::profile::default_profile;
use kube_engine_core::schedule::{schedule, Order};
use kube_engine_core::snapshot::parse_documents;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{json, Value};

/// `cases` cases of seed 0, unless the environment says otherwise.
fn config(cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0);
    }
    // The seed reproduces a failure; no regression files are written into the tree.
    config.failure_persistence = None;
    config
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Loads `docs`; a snapshot is scheduled and evaluated. Anything but a result or an input
/// error fails the case, a panic included, with the document as JSON (what a failure shows of
/// the generated input is the mutated places' indices, not what they became).
fn load_and_run(docs: &[&[u8]]) -> Result<(), TestCaseError> {
    let outcome = std::panic::catch_unwind(|| match parse_documents(docs) {
        Ok(snap) => {
            evaluate(&snap, &snap.current);
            match schedule(&snap, None, &[default_profile()], Order::Queue, 0) {
                Ok(placement) => {
                    evaluate(&snap, &placement.assignment);
                    Ok(())
                }
                Err(Error::InvalidArgument(_)) => Ok(()),
                Err(e) => Err(format!("schedule: {e:?}")),
            }
        }
        Err(Error::Input(_) | Error::Quantity(_)) => Ok(()),
        Err(e) => Err(format!("not an input error: {e:?}")),
    });
    let failure = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(message)) => message,
        Err(panic) => format!(
            "panic: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        ),
    };
    let shown: Vec<_> = docs.iter().map(|d| String::from_utf8_lossy(d)).collect();
    Err(TestCaseError::fail(format!("{failure}\ninput: {shown:?}")))
}

fn quantity(choices: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::sample::select(choices).prop_map(Value::from)
}

/// Amounts the API server accepts that no cluster has: each fits, their sums do not.
const HUGE: &[&str] = &["4Ei", "8Ei", "9Ei", "5e15", "1e18", "9223372036854775807"];

fn node(i: usize, huge: bool) -> impl Strategy<Value = Value> {
    (
        quantity(if huge {
            HUGE
        } else {
            &["2", "4", "3500m", "64"]
        }),
        quantity(if huge { HUGE } else { &["4Gi", "16Gi", "1e10"] }),
        quantity(&["3", "110"]),
        0..5u32,
        prop::sample::select(vec!["", "NoSchedule", "NoExecute"]),
        any::<bool>(),
    )
        .prop_map(move |(cpu, memory, pods, gpus, taint, unschedulable)| {
            let name = format!("node-{i}");
            let mut node = json!({
                "kind": "Node", "apiVersion": "v1",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                             "topology.kubernetes.io/zone": format!("zone-{}", i % 2)}},
                "spec": {"unschedulable": unschedulable},
                "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                           "conditions": [{"type": "Ready", "status": "True"}]},
            });
            if gpus > 0 {
                node["status"]["allocatable"]["nvidia.com/gpu"] = json!(gpus.to_string());
            }
            if !taint.is_empty() {
                node["spec"]["taints"] = json!([{"key": "dedicated", "effect": taint}]);
            }
            node
        })
}

fn pod(i: usize, nodes: usize, huge: bool) -> impl Strategy<Value = Value> {
    (
        quantity(if huge { HUGE } else { &["0", "100m", "1", "2.5"] }),
        quantity(if huge { HUGE } else { &["64Mi", "1Gi", "3e9"] }),
        prop::sample::select(vec![None, Some("1"), Some("2")]),
        prop::option::of(0..nodes.max(1)),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(cpu, memory, gpu, bound, tolerate, spread)| {
            let mut requests = json!({"cpu": cpu, "memory": memory});
            if let Some(gpu) = gpu {
                requests["nvidia.com/gpu"] = json!(gpu);
            }
            let mut pod = json!({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": format!("pod-{i}"), "namespace": "default",
                             "uid": format!("uid-{i}"), "labels": {"app": format!("app-{}", i % 3)}},
                "spec": {"containers": [{"name": "c", "image": "x",
                                         "resources": {"requests": requests}}],
                         "initContainers": [{"name": "init", "image": "x",
                                             "resources": {"requests": {"cpu": "1"}}}]},
                "status": {"phase": "Pending"},
            });
            if let (Some(n), true) = (bound, nodes > 0) {
                pod["spec"]["nodeName"] = json!(format!("node-{n}"));
                pod["status"]["phase"] = json!("Running");
            }
            if tolerate {
                pod["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
            }
            if spread {
                pod["spec"]["topologySpreadConstraints"] = json!([{
                    "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app": format!("app-{}", i % 3)}}}]);
            }
            pod
        })
}

/// A small valid cluster as a `List`; with `huge`, its amounts are [`HUGE`].
fn cluster(huge: bool) -> impl Strategy<Value = Value> {
    (0..4usize, 0..7usize).prop_flat_map(move |(nodes, pods)| {
        (
            (0..nodes).map(|i| node(i, huge)).collect::<Vec<_>>(),
            (0..pods).map(|i| pod(i, nodes, huge)).collect::<Vec<_>>(),
        )
            .prop_map(|(nodes, pods)| {
                json!({"kind": "List", "apiVersion": "v1",
                       "items": nodes.into_iter().chain(pods).collect::<Vec<_>>()})
            })
    })
}

/// What a hostile writer puts in a field.
fn hostile() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        "[-+]?[0-9.]{0,25}([eE][-+]?[0-9]{0,25}|[KMGTPE]i?|[mnuk])?".prop_map(Value::from),
        quantity(&["4Ei", "8Ei", "9Ei", "5e15", "1e18", "-1", "0", ""]),
        Just(json!([])),
        Just(json!({})),
        Just(json!([[[[[[[[[[[[1]]]]]]]]]]]])),
    ]
}

/// Every path into `value` (object keys and array indices), the root excluded.
fn paths(value: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    let children: Vec<(Value, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (json!(k), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (json!(i), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        at.push(key);
        out.push(at.clone());
        paths(child, at, out);
        at.pop();
    }
}

fn slot<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Value::String(k) => &mut v[k.as_str()],
        _ => &mut v[step.as_u64().unwrap() as usize],
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_load_or_are_refused(data in prop::collection::vec(any::<u8>(), 0..400)) {
        load_and_run(&[&data])?;
    }

    #[test]
    fn gzip_of_arbitrary_bytes_loads_or_is_refused(
        data in prop::collection::vec(any::<u8>(), 0..400),
        cut in any::<prop::sample::Index>(),
    ) {
        let compressed = gzip(&data);
        load_and_run(&[&compressed])?;
        // A stream cut short.
        load_and_run(&[&compressed[..cut.index(compressed.len())]])?;
    }

    #[test]
    fn valid_clusters_load_and_run(doc in cluster(false)) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        prop_assert!(parse_documents(&[&bytes]).is_ok());
        load_and_run(&[&bytes])?;
    }

    #[test]
    fn huge_amounts_load_or_are_refused_and_run(doc in cluster(true)) {
        load_and_run(&[&serde_json::to_vec(&doc).unwrap()])?;
    }

    #[test]
    fn mutated_clusters_load_or_are_refused(
        doc in cluster(false),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), hostile()), 1..4),
    ) {
        let mut doc = doc;
        for (at, value) in mutations {
            let mut all = Vec::new();
            paths(&doc, &mut Vec::new(), &mut all);
            *slot(&mut doc, &all[at.index(all.len())]) = value;
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        load_and_run(&[&bytes])?;
        load_and_run(&[&gzip(&bytes)])?;
    }
}
