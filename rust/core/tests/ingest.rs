//! Snapshot ingestion: valid inputs in every accepted shape, and bad inputs rejected with a path.

use std::io::Write;

use kube_engine_core::error::Error;
use kube_engine_core::model::gpu::GpuDemand;
use kube_engine_core::resources::{CPU, MEMORY, PODS};
use kube_engine_core::snapshot::{
    merge_lists, parse_documents, parse_documents_with, LeftOut, ParseOptions,
};
use kube_engine_core::Snapshot;

fn node(name: &str, extra_alloc: &str) -> String {
    format!(
        r#"{{"kind":"Node","apiVersion":"v1","metadata":{{"name":"{name}","labels":{{"kubernetes.io/hostname":"{name}"}}}},
            "status":{{"allocatable":{{"cpu":"4","memory":"16Gi","pods":"110"{extra_alloc}}},
                       "conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
    )
}

fn pod(name: &str, node: Option<&str>, requests: &str) -> String {
    let node = node
        .map(|n| format!(r#""nodeName":"{n}","#))
        .unwrap_or_default();
    format!(
        r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"default","uid":"u-{name}"}},
            "spec":{{{node}"containers":[{{"name":"c","image":"x","resources":{{"requests":{{{requests}}}}}}}]}},
            "status":{{"phase":"Running"}}}}"#
    )
}

fn list(items: &[String]) -> Vec<u8> {
    format!(
        r#"{{"kind":"List","apiVersion":"v1","items":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

fn parse(doc: &[u8]) -> Snapshot {
    parse_documents(&[doc]).unwrap()
}

fn error(doc: &[u8]) -> String {
    match parse_documents(&[doc]) {
        Err(Error::Input(e)) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("accepted invalid input"),
    }
}

#[test]
fn a_list_of_nodes_and_pods() {
    let s = parse(&list(&[
        node("n1", ""),
        pod("a", Some("n1"), r#""cpu":"250m","memory":"64Mi""#),
        pod("b", None, r#""cpu":"1""#),
    ]));
    assert_eq!(s.nodes.len(), 1);
    assert_eq!(s.pods.len(), 2);
    assert_eq!(s.nodes.allocatable.get(0, CPU), 4000);
    assert_eq!(s.nodes.allocatable.get(0, MEMORY), 16 << 30);
    assert_eq!(s.pods.requests.get(0, CPU), 250);
    assert_eq!(s.pods.requests.get(0, MEMORY), 64 << 20);
    assert_eq!(s.pods.requests.get(0, PODS), 1);
    assert_eq!(s.current.node, vec![Some(0), None]);
    assert_eq!(s.pod_key(1), "default/b");
    assert_eq!(s.pods.id("default/a"), Some(0));
}

#[test]
fn typed_lists_infer_item_kinds_and_documents_merge() {
    let nodes = br#"{"kind":"NodeList","apiVersion":"v1","items":[{"metadata":{"name":"n1"},"status":{"allocatable":{"cpu":"1"}}}]}"#;
    let pods = br#"{"kind":"PodList","apiVersion":"v1","items":[{"metadata":{"name":"p","namespace":"x"},"spec":{"nodeName":"n1","containers":[{"name":"c"}]}}]}"#;
    let pdbs = br#"{"kind":"PodDisruptionBudgetList","apiVersion":"policy/v1","items":[{"metadata":{"name":"b","namespace":"x"},"spec":{"maxUnavailable":1,"selector":{}}}]}"#;
    let s = parse_documents(&[nodes, pods, pdbs]).unwrap();
    assert_eq!((s.nodes.len(), s.pods.len(), s.pdbs.len()), (1, 1, 1));
    assert_eq!(s.current.node, vec![Some(0)]);
    // The merged List parses to the same snapshot.
    let merged = merge_lists(&[nodes, pods, pdbs]).unwrap();
    let m = parse(&merged);
    assert_eq!((m.nodes.len(), m.pods.len(), m.pdbs.len()), (1, 1, 1));
    // A bad item in the second document names the document.
    let bad = br#"{"kind":"PodList","items":[{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}]}"#;
    let Err(Error::Input(e)) = parse_documents(&[nodes, bad]) else {
        panic!()
    };
    assert_eq!(e.path, "documents[1].items[0].metadata");
}

#[test]
fn gzip_input() {
    let doc = list(&[node("n1", ""), pod("a", Some("n1"), r#""cpu":"1""#)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&doc).unwrap();
    let s = parse(&gz.finish().unwrap());
    assert_eq!(s.pods.len(), 1);
    assert!(error(&[0x1f, 0x8b, 1, 2, 3]).starts_with("invalid gzip data"));
}

#[test]
fn terminal_and_requestless_pods() {
    let mut failed = pod("f", Some("n1"), r#""cpu":"3""#);
    failed = failed.replace("Running", "Failed");
    let s = parse(&list(&[
        node("n1", ""),
        failed,
        pod("none", Some("n1"), ""),
    ]));
    assert!(!s.is_active(0));
    assert!(s.is_active(1));
    assert_eq!(s.pods.requests.get(1, CPU), 0);
    assert_eq!(s.pods.requests.get(1, PODS), 1);
}

#[test]
fn gpu_encoding() {
    let s = parse(&list(&[
        node(
            "g",
            r#","nvidia.com/gpu":"4","kube-engine.io/gpu-milli":"4000""#,
        )
        .replace(
            r#""labels":{"#,
            r#""labels":{"nvidia.com/gpu.product":"V100M16","#,
        ),
        pod("share", Some("g"), r#""kube-engine.io/gpu-milli":"460""#),
        pod("whole", Some("g"), r#""nvidia.com/gpu":"2""#).replace(
            r#""uid":"u-whole""#,
            r#""uid":"u-whole","annotations":{"kube-engine.io/gpu-devices":"1,2"}"#,
        ),
        pod("share2", Some("g"), r#""kube-engine.io/gpu-milli":"500""#),
    ]));
    assert_eq!(s.nodes.gpu_devices, vec![4]);
    assert_eq!(s.symbols.resolve(s.nodes.gpu_model[0].unwrap()), "V100M16");
    // gpu-milli on the node is derived, not an ordinary resource.
    assert!(s.resources.get("kube-engine.io/gpu-milli").is_none());
    assert_eq!(s.pods.gpu[0], GpuDemand::share(460));
    assert_eq!(s.pods.gpu[1], GpuDemand::whole(2));
    // Annotated devices are kept; the others are best-fit after them, in input order: the 460
    // share goes to device 0 (lowest index among the free ones), the 500 share joins it there.
    assert_eq!(s.current.gpu_devices, vec![0b0001, 0b0110, 0b0001]);
    assert_eq!(s.pods.gpu_devices_inferred, vec![true, false, true]);
}

#[test]
fn malformed_json() {
    let e = error(b"{\"kind\": \"List\", \"items\": [");
    assert!(e.starts_with("malformed JSON: EOF while parsing"), "{e}");
    assert!(error(b"[1,2]").starts_with("not a Kubernetes list"));
}

#[test]
fn wrong_kinds() {
    assert_eq!(
        error(br#"{"kind":"ServiceList","items":[]}"#),
        "kind: unsupported document kind \"ServiceList\" (expected List, NodeList, PodList, \
         PodDisruptionBudgetList, PersistentVolumeClaimList, PersistentVolumeList or \
         StorageClassList)"
    );
    assert_eq!(
        error(&list(&[
            r#"{"kind":"Service","metadata":{"name":"s"}}"#.into()
        ])),
        "items[0].kind: unsupported kind \"Service\" (expected Node, Pod, PodDisruptionBudget, \
         PersistentVolumeClaim, PersistentVolume or StorageClass)"
    );
    assert_eq!(
        error(br#"{"kind":"NodeList","items":[{"kind":"Pod","metadata":{"name":"p"}}]}"#),
        "items[0].kind: unsupported kind \"Pod\" (expected Node in a NodeList)"
    );
    assert_eq!(
        error(&list(&[r#"{"metadata":{"name":"s"}}"#.into()])),
        "items[0]: missing field `kind` (items of a List must say what they are)"
    );
}

#[test]
fn missing_and_mistyped_fields() {
    assert_eq!(
        error(&list(&[
            node("n1", ""),
            r#"{"kind":"Pod","metadata":{"name":"p","namespace":"d"}}"#.into()
        ])),
        "items[1]: missing field `spec`"
    );
    assert_eq!(
        error(&list(&[
            r#"{"kind":"Node","metadata":{"labels":{}}}"#.into()
        ])),
        "items[0].metadata: missing field `name`"
    );
    assert_eq!(
        error(&list(&[
            node("n1", ""),
            pod("p", Some("n1"), r#""cpu":"1""#).replace(r#""namespace":"default","#, "")
        ])),
        "items[1].metadata: missing field `namespace`"
    );
    assert_eq!(
        error(&list(&[pod("p", None, r#""cpu":"1""#).replace(
            r#""image":"x","#,
            r#""image":"x","ports":[{"hostPort":"80"}],"#
        )])),
        "items[0].spec.containers[0].ports[0].hostPort: invalid type: string \"80\", expected i32"
    );
    assert_eq!(
        error(&list(&[pod("p", None, r#""cpu":"1""#).replace("Running", "Sleeping")])),
        "items[0].status.phase: unknown variant `Sleeping`, expected one of `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`"
    );
}

#[test]
fn invalid_quantities_name_the_path_and_value() {
    assert_eq!(
        error(&list(&[pod("p", None, r#""cpu":"12x""#)])),
        "items[0].spec.containers[0].resources.requests.cpu: invalid quantity \"12x\" (unknown suffix \"x\")"
    );
    assert_eq!(
        error(&list(&[
            node("n1", "").replace(r#""cpu":"4""#, r#""cpu":"4 cores""#)
        ])),
        "items[0].status.allocatable.cpu: invalid quantity \"4 cores\" (unknown suffix \" cores\")"
    );
    assert_eq!(
        error(&list(&[node("n1", r#","nvidia.com/gpu":"1.5""#)])),
        "items[0].status.allocatable.nvidia.com/gpu: nvidia.com/gpu must be a whole number of devices up to 64, got \"1500m\""
    );
}

#[test]
fn duplicates_and_dangling_references() {
    assert_eq!(
        error(&list(&[node("n1", ""), node("n1", "")])),
        "items[1].metadata.name: duplicate node \"n1\" (first at items[0])"
    );
    assert_eq!(
        error(&list(&[
            node("n1", ""),
            pod("a", Some("n1"), ""),
            pod("a", None, "")
        ])),
        "items[2].metadata.name: duplicate pod \"default/a\" (first at items[1])"
    );
    let dangling = list(&[
        node("n1", ""),
        pod("a", Some("n9"), ""),
        pod("b", Some("n1"), ""),
    ]);
    let strict = ParseOptions {
        strict: true,
        ..Default::default()
    };
    let Err(Error::Input(e)) = parse_documents_with(&[&dangling], strict) else {
        panic!("a strict parse refuses a pod bound to a node the input lacks");
    };
    assert_eq!(
        e.to_string(),
        "items[1].spec.nodeName: pod \"default/a\" is bound to unknown node \"n9\""
    );
    // By default the pod is left out, and said to be.
    let s = parse_documents(&[&dangling]).unwrap();
    assert_eq!(s.pods.len(), 1);
    assert_eq!(s.pod_key(0), "default/b");
    assert_eq!(s.pods.id("default/b"), Some(0));
    assert_eq!(
        s.left_out,
        vec![LeftOut {
            pod: "default/a".into(),
            node: "n9".into(),
            path: "items[1]".into()
        }]
    );
}

#[test]
fn invalid_gpu_device_annotations() {
    let annotated = |devices: &str| {
        pod("w", Some("g"), r#""nvidia.com/gpu":"2""#).replace(
            r#""uid":"u-w""#,
            &format!(r#""uid":"u-w","annotations":{{"kube-engine.io/gpu-devices":"{devices}"}}"#),
        )
    };
    let g = node("g", r#","nvidia.com/gpu":"2""#);
    assert_eq!(
        error(&list(&[g.clone(), annotated("0,5")])),
        "items[1].metadata.annotations.kube-engine.io/gpu-devices: invalid device list \"0,5\": device 5 does not exist (node has 2)"
    );
    assert_eq!(
        error(&list(&[g, annotated("1")])),
        "items[1].metadata.annotations.kube-engine.io/gpu-devices: lists 1 device(s) in \"1\" but the pod needs 2"
    );
}

#[test]
fn deep_validation_errors_carry_the_path() {
    let with_affinity = pod("p", None, "").replace(
        r#""containers""#,
        r#""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"cores","operator":"Gt","values":["1","2"]}]}]}}},"containers""#,
    );
    assert_eq!(
        error(&list(&[with_affinity])),
        "items[0].spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]: operator Gt on key \"cores\" needs exactly one value, got [\"1\", \"2\"]"
    );
    let pdb = r#"{"kind":"PodDisruptionBudget","metadata":{"name":"b","namespace":"d"},"spec":{"minAvailable":"120%"}}"#;
    assert_eq!(
        error(&list(&[pdb.into()])),
        "items[0].spec.minAvailable: Invalid value: \"120%\": must not be greater than 100%"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn error_with(doc: &[u8], opts: ParseOptions) -> String {
    match parse_documents_with(&[doc], opts) {
        Err(Error::Input(e)) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("accepted input beyond the limit"),
    }
}

#[test]
fn inflated_input_is_capped() {
    let limit = |max_input_bytes| ParseOptions {
        max_input_bytes,
        ..Default::default()
    };
    let doc = list(&[node("n1", ""), pod("a", Some("n1"), r#""cpu":"1""#)]);
    let size = doc.len() as u64;
    // At the limit it loads; a byte less, plain or gzip, and it is refused, naming the limit.
    assert!(parse_documents_with(&[&gzip(&doc)], limit(size)).is_ok());
    assert!(parse_documents_with(&[&doc], limit(size)).is_ok());
    let e = error_with(&gzip(&doc), limit(size - 1));
    assert!(e.starts_with("inflates to more than"), "{e}");
    assert!(e.contains(&format!("{} bytes", size - 1)), "{e}");
    assert!(error_with(&doc, limit(size - 1)).starts_with("holds more than"));
    // A bomb (64 MiB of zeros in 64 KiB) is refused by its first chunk, under any limit.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 100 << 10, "{}", bomb.len());
    let e = error_with(&bomb, ParseOptions::default());
    assert!(e.contains("starts with byte 0x00"), "{e}");
    // Leading white space counts against the limit but is not kept.
    let mut spaced = vec![b' '; 1 << 20];
    spaced.extend_from_slice(&doc);
    assert_eq!(parse(&gzip(&spaced)).pods.len(), 1);
    let e = error_with(&gzip(&spaced), limit(1 << 20));
    assert!(e.starts_with("inflates to more than"), "{e}");
    // In a document of several, the path says which.
    match parse_documents_with(&[&doc, &gzip(&doc)], limit(size - 1)) {
        Err(Error::Input(e)) => assert_eq!(e.path, "documents[0]"),
        other => panic!("{:?}", other.map(|s| s.pods.len())),
    }
}

#[test]
fn negative_quantities_are_named_as_written() {
    assert_eq!(
        error(&list(&[pod("p", None, r#""memory":"-1Gi""#)])),
        "items[0].spec.containers[0].resources.requests.memory: Invalid value: \"-1Gi\": \
         must be greater than or equal to 0"
    );
    assert_eq!(
        error(&list(&[node("n1", r#","example.com/x":-2"#)])),
        "items[0].status.allocatable.example.com/x: Invalid value: \"-2\": \
         must be greater than or equal to 0"
    );
    let overhead = pod("p", None, r#""cpu":"1""#).replace(
        r#""containers""#,
        r#""overhead":{"cpu":"-0.5"},"containers""#,
    );
    assert_eq!(
        error(&list(&[overhead])),
        "items[0].spec.overhead.cpu: Invalid value: \"-0.5\": must be greater than or equal to 0"
    );
    // -0 is zero, not negative.
    assert_eq!(
        parse(&list(&[pod("p", None, r#""cpu":"-0""#)])).pods.len(),
        1
    );
}

#[test]
fn requests_may_not_exceed_limits() {
    let p = pod("p", None, r#""cpu":"2""#).replace(
        r#""requests":{"cpu":"2"}"#,
        r#""requests":{"cpu":"2"},"limits":{"cpu":"1500m"}"#,
    );
    assert_eq!(
        error(&list(&[p])),
        "items[0].spec.containers[0].resources.requests.cpu: Invalid value: \"2\": \
         must be less than or equal to cpu limit of 1500m"
    );
    let equal = pod("p", None, r#""cpu":"2""#).replace(
        r#""requests":{"cpu":"2"}"#,
        r#""requests":{"cpu":"2"},"limits":{"cpu":"2000m"}"#,
    );
    assert_eq!(parse(&list(&[equal])).pods.len(), 1);
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "x".repeat(1 << 20);
    let e = error(&list(&[pod("p", None, &format!(r#""cpu":["{long}"]"#))]));
    assert!(e.len() < 400, "{} chars: {}", e.len(), &e[..200]);
    let e = error(&list(&[pod("p", None, &format!(r#""cpu":"{long}""#))]));
    assert!(e.len() < 400, "{} chars", e.len());
    assert!(e.contains("xxx..."), "{e}");
}

/// `pod("p", None, "")` with `from` replaced by `to` (which must be there).
fn edited(item: String, from: &str, to: &str) -> String {
    assert!(item.contains(from), "{from} not in {item}");
    item.replacen(from, to, 1)
}

#[test]
fn objects_the_api_server_would_refuse() {
    let p = || pod("p", None, "");
    let n = || node("n1", "");
    let cases: Vec<(String, &str)> = vec![
        (
            edited(p(), r#""name":"p""#, r#""name":"""#),
            "items[0].metadata.name: Required value: name or generateName is required",
        ),
        (
            edited(p(), r#""name":"p""#, r#""name":"a/b""#),
            "items[0].metadata.name: Invalid value: \"a/b\": may not contain '/'",
        ),
        (
            edited(p(), r#""namespace":"default""#, r#""namespace":"..""#),
            "items[0].metadata.namespace: Invalid value: \"..\": may not be '..'",
        ),
        (
            edited(p(), r#""name":"c""#, r#""name":"c","ports":[{"containerPort":80,"hostPort":70000}]"#),
            "items[0].spec.containers[0].ports[0].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            edited(p(), r#""name":"c""#, r#""name":"c","ports":[{"containerPort":0}]"#),
            "items[0].spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            edited(p(), r#""containers""#, r#""initContainers":[{"name":"c"}],"containers""#),
            "items[0].spec.initContainers[0].name: Duplicate value: \"c\"",
        ),
        (
            edited(p(), r#""name":"c""#, r#""name":"C_1""#),
            "items[0].spec.containers[0].name: Invalid value: \"C_1\": a lowercase RFC 1123 label",
        ),
        (
            edited(n(), r#""labels":{"#, r#""labels":{"bad key":"x","#),
            "items[0].metadata.labels: Invalid value: \"bad key\": name part must consist of",
        ),
        (
            edited(p(), r#""containers""#, r#""nodeSelector":{"zone":"a b"},"containers""#),
            "items[0].spec.nodeSelector: Invalid value: \"a b\": a valid label must be",
        ),
        (
            edited(n(), r#""labels":{"#, r#""labels":{"k":"-x","#),
            "items[0].metadata.labels: Invalid value: \"-x\": a valid label must be an empty string",
        ),
        (
            edited(p(), r#""uid""#, r#""annotations":{"a/b/c":""},"uid""#),
            "items[0].metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist",
        ),
        (
            edited(p(), r#""uid""#, r#""creationTimestamp":"yesterday","uid""#),
            "items[0].metadata.creationTimestamp: invalid timestamp \"yesterday\" \
             (expected RFC 3339, e.g. 2026-01-01T00:00:00Z)",
        ),
        (
            edited(p(), r#""uid""#, r#""deletionTimestamp":"2026-02-30T00:00:00Z","uid""#),
            "items[0].metadata.deletionTimestamp: invalid timestamp \"2026-02-30T00:00:00Z\"",
        ),
        (
            edited(n(), r#""status""#, r#""spec":{"taints":[{"key":"","effect":"NoSchedule"}]},"status""#),
            "items[0].spec.taints[0]: key: Invalid value: \"\": name part must be non-empty",
        ),
        (
            edited(n(), r#""status""#, r#""spec":{"taints":[{"key":"k","effect":"NoExecute"},{"key":"k","value":"v","effect":"NoExecute"}]},"status""#),
            "items[0].spec.taints[1]: Duplicate value: \"k:NoExecute\": taints must be unique by key and effect pair",
        ),
        (
            r#"{"kind":"PodDisruptionBudget","metadata":{"name":"b","namespace":"d"},"spec":{"maxUnavailable":-1}}"#.into(),
            "items[0].spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            r#"{"kind":"PodDisruptionBudget","metadata":{"name":"b","namespace":"d"},"spec":{"minAvailable":1.5}}"#.into(),
            "items[0].spec.minAvailable: invalid type: floating point `1.5`, expected an integer or a percentage string such as \"50%\"",
        ),
        (
            r#"{"kind":"PodDisruptionBudget","metadata":{"name":"b","namespace":"d"},"spec":{},"status":{"disruptionsAllowed":-1}}"#.into(),
            "items[0].status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            r#"{"kind":"PodDisruptionBudget","metadata":{"name":"a/b","namespace":"d"},"spec":{}}"#.into(),
            "items[0].metadata.name: Invalid value: \"a/b\": may not contain '/'",
        ),
        (
            pod("p", None, r#""memory":"1e2147483648""#),
            "items[0].spec.containers[0].resources.requests.memory: invalid quantity \"1e2147483648\" (exponent out of range",
        ),
    ];
    for (item, expected) in cases {
        let e = error(&list(std::slice::from_ref(&item)));
        assert!(
            e.starts_with(expected),
            "{item}\n got: {e}\nwant: {expected}"
        );
    }
    // What the API server takes (or kube-engine takes deliberately: a pod without containers,
    // see PodSpec::validate; names outside RFC 1123, see check_meta): a PDB name with capitals, a host port of 0, an absent
    // containerPort, a timestamp with an offset, null timestamps.
    let fine = [
        r#"{"kind":"PodDisruptionBudget","metadata":{"name":"Web_PDB","namespace":"d"},"spec":{}}"#
            .to_string(),
        edited(
            p(),
            r#""name":"c""#,
            r#""name":"c","ports":[{"hostPort":0},{"hostPort":8080}]"#,
        ),
        edited(
            pod("e", None, ""),
            r#""containers":[{"name":"c","image":"x","resources":{"requests":{}}}]"#,
            r#""containers":[]"#,
        ),
        edited(
            pod("q", None, ""),
            r#""uid""#,
            r#""creationTimestamp":"2026-01-01T01:00:00+01:00","deletionTimestamp":null,"uid""#,
        ),
    ];
    let s = parse(&list(&fine));
    assert_eq!((s.pods.len(), s.pdbs.len()), (3, 1));
    assert_eq!(s.pods.created[2], Some(1_767_225_600));
    assert_eq!(s.pods.requests.get(1, CPU), 0);
}

#[test]
fn resource_names_are_bounded() {
    let names = |n: usize| {
        (0..n)
            .map(|i| format!(r#","example.com/r{i}":"1""#))
            .collect::<String>()
    };
    // The four standard resources and 252 extended ones fill the limit.
    assert_eq!(
        parse(&list(&[node("n1", &names(252))])).resources.len(),
        256
    );
    assert_eq!(
        error(&list(&[node("n1", ""), pod("p", None, &names(253)[1..])])),
        "items[1].spec: more than 256 resource names in one snapshot (the limit on resource \
         names), with \"example.com/r252\""
    );
}
