//! Kubernetes JSON → [`Snapshot`].
//!
//! Documents are split into raw items in one pass, items are deserialised in parallel (each into the
//! model types, whose validation runs inside serde so errors carry JSON paths), then merged into
//! columns in input order so the result does not depend on the thread count.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::shared::SharedConstraints;
use super::{NodeId, Owner, Snapshot, SymLabels};
use crate::error::{cut, Error, InputError};
use crate::intern::Interner;
use crate::model::gpu::{
    GPU_DEVICES_ANNOTATION, GPU_MILLI_RESOURCE, GPU_MODEL_LABEL, GPU_RESOURCE, MAX_DEVICES,
};
use crate::model::meta::{invalid_timestamp, parse_timestamp, ObjectMeta};
use crate::model::node::Node;
use crate::model::pdb::PodDisruptionBudget;
use crate::model::pod::{EffectiveRequest, Pod};
use crate::model::validation;
use crate::model::volume::{PersistentVolume, PersistentVolumeClaim, StorageClass};
use crate::model::Labels;
use crate::resources::{amount, ResourceMatrix, ResourceNames, SparseResources};

const EVICT_ANNOTATION: &str = "kube-engine.io/evict";
const SAFE_TO_EVICT_ANNOTATION: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
const DO_NOT_DISRUPT_ANNOTATION: &str = "karpenter.sh/do-not-disrupt";
const DESCHEDULER_EVICT_ANNOTATION: &str = "descheduler.alpha.kubernetes.io/evict";
/// Written by kube-engine's applier on the replacements of the pods it moved.
const MOVED_AT_ANNOTATION: &str = "kube-engine.io/moved-at";
const CONTROL_PLANE_LABELS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Node,
    Pod,
    Pdb,
    Claim,
    Volume,
    Class,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Node,
        Kind::Pod,
        Kind::Pdb,
        Kind::Claim,
        Kind::Volume,
        Kind::Class,
    ];

    fn from_item_kind(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == kind)
    }

    fn from_list_kind(kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| kind.strip_suffix("List") == Some(k.name()))
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::Pdb => "PodDisruptionBudget",
            Kind::Claim => "PersistentVolumeClaim",
            Kind::Volume => "PersistentVolume",
            Kind::Class => "StorageClass",
        }
    }
}

#[derive(Deserialize)]
struct DocHead<'a> {
    #[serde(default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct ItemHead {
    #[serde(default)]
    kind: Option<String>,
}

/// The default of [`ParseOptions::max_input_bytes`]: 4 GiB, above any cluster Kubernetes
/// supports (150,000 pods at about 10 KiB of JSON each, managedFields included, are 1.5 GiB), yet
/// a bound on what a hostile input can make the parser hold.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 4 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most distinct resource names (cpu, memory, pods, ephemeral-storage and extended ones,
/// GPUs aside) a snapshot may use. A cluster has a handful, a few dozen with many device plugins.
pub const MAX_RESOURCE_NAMES: usize = 256;

fn too_large(limit: u64, what: &str) -> InputError {
    InputError::new(
        "",
        format!(
            "{what} more than {limit} bytes, the limit on one input (max_input_bytes, \
             KUBE_ENGINE_MAX_INPUT_BYTES)"
        ),
    )
}

/// Plain JSON, or gzip-compressed JSON (recognised by its magic bytes), of at most
/// [`DEFAULT_MAX_INPUT_BYTES`] once inflated.
pub fn decompress(data: &[u8]) -> Result<Cow<'_, [u8]>, InputError> {
    decompress_limited(data, DEFAULT_MAX_INPUT_BYTES)
}

/// Plain JSON, or gzip-compressed JSON, of at most `limit` bytes once inflated. Inflation
/// streams, so memory stays within the limit whatever the ratio; and the white space a document
/// starts with is dropped as it comes and the first other byte must open a JSON value, so a bomb
/// of zeros or spaces is refused after one chunk, not inflated whole.
pub fn decompress_limited(data: &[u8], limit: u64) -> Result<Cow<'_, [u8]>, InputError> {
    if !data.starts_with(&GZIP_MAGIC) {
        if data.len() as u64 > limit {
            return Err(too_large(limit, "holds"));
        }
        return Ok(Cow::Borrowed(data));
    }
    const CHUNK: usize = 64 << 10;
    let mut decoder = flate2::read::MultiGzDecoder::new(data);
    let mut chunk = vec![0u8; CHUNK];
    let guess = (data.len() as u64)
        .saturating_mul(8)
        .min(limit)
        .min(1 << 30);
    let mut out = Vec::with_capacity(guess as usize);
    let mut inflated: u64 = 0;
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InputError::new("", format!("invalid gzip data: {e}"))),
        };
        inflated += n as u64;
        if inflated > limit {
            return Err(too_large(limit, "inflates to"));
        }
        let mut bytes = &chunk[..n];
        if out.is_empty() {
            bytes = bytes.trim_ascii_start();
            opens_json(bytes, "the inflated data")?;
        }
        if out.capacity() - out.len() < bytes.len() {
            // Doubling, but never past the limit, so a bomb that is valid JSON takes at most
            // the limit, not the next power of two above it.
            let cap = usize::try_from(limit).unwrap_or(usize::MAX);
            let want = out
                .capacity()
                .saturating_mul(2)
                .min(cap)
                .max(out.len() + bytes.len());
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(bytes);
    }
    Ok(Cow::Owned(out))
}

/// Refuses `bytes` (leading white space already dropped) unless they can open a JSON document:
/// what is not JSON is told by its first byte, not after reading it to the limit.
fn opens_json(bytes: &[u8], what: &str) -> Result<(), InputError> {
    match bytes.first() {
        Some(&first) if first != b'{' && first != b'[' => Err(InputError::new(
            "",
            format!("malformed JSON: {what} starts with byte {first:#04x}, not {{ or ["),
        )),
        _ => Ok(()),
    }
}

/// A snapshot file, read no further than the limit on input (so `/dev/zero` is refused, not read
/// forever); errors about the whole input name the file.
pub fn parse_file(path: &std::path::Path, opts: ParseOptions) -> Result<Snapshot, Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // Sized from the file's length up front (a device or pipe says 0): growing by doubling copies
    // a large snapshot several times over.
    let size = file.metadata().map_or(0, |m| m.len());
    let mut data = Vec::with_capacity(size.min(opts.max_input_bytes.saturating_add(1)) as usize);
    let mut file = file.take(opts.max_input_bytes.saturating_add(1));
    // The head says whether the rest is worth reading: `/dev/zero` is refused at once.
    (&mut file).take(4096).read_to_end(&mut data).map_err(io)?;
    let head = if data.starts_with(&GZIP_MAGIC) {
        Ok(())
    } else {
        opens_json(data.trim_ascii_start(), "the file")
    };
    let parsed = match head {
        Err(e) => Err(e.into()),
        Ok(()) => {
            file.read_to_end(&mut data).map_err(io)?;
            if data.len() as u64 > opts.max_input_bytes {
                Err(too_large(opts.max_input_bytes, "holds").into())
            } else {
                parse_documents_with(&[&data], opts)
            }
        }
    };
    parsed.map_err(|e| match e {
        Error::Input(mut e) if e.path.is_empty() => {
            e.message = format!("{}: {}", path.display(), e.message);
            Error::Input(e)
        }
        e => e,
    })
}

/// serde_json appends " at line L column C"; inside an item that position is meaningless to the
/// user, who gets the JSON path instead.
fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty() || rest == ".") {
        (_, true) => prefix.to_string(),
        (true, false) => rest.to_string(),
        (false, false) if rest.starts_with('[') => format!("{prefix}{rest}"),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

/// The effective request of one pod spec (the `spec` object of a Pod, as JSON).
pub fn spec_effective_request(spec: &[u8]) -> Result<EffectiveRequest, InputError> {
    let text = std::str::from_utf8(spec)
        .map_err(|e| InputError::new("spec", format!("not UTF-8: {e}")))?;
    let raw: &RawValue = serde_json::from_str(text)
        .map_err(|e| InputError::new("spec", format!("malformed JSON: {e}")))?;
    let spec: crate::model::pod::PodSpec = parse_item(raw, "spec")?;
    spec.validate("spec")?;
    spec.effective_request("spec")
}

/// Deserialises one item; on failure deserialises it again, tracking the path, to say where.
/// (Tracking costs time, and almost every input is valid.)
fn parse_item<T: DeserializeOwned>(raw: &RawValue, path: &str) -> Result<T, InputError> {
    serde_json::from_str(raw.get()).map_err(|fast_err| {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) => InputError::new(
                join(path, &e.path().to_string()),
                without_position(e.inner()),
            ),
            Ok(_) => InputError::new(path, without_position(&fast_err)),
        }
    })
}

/// An item of a document, before it is parsed. `kind` is known from a typed list; items of a
/// `List` say their own kind, read in the parallel phase.
struct Located<'a> {
    path: String,
    raw: &'a RawValue,
    list_kind: &'a str,
    element: Option<Kind>,
}

/// Splits documents into raw items (one cheap scan per document).
fn locate<'a>(
    docs: &'a [Cow<'a, [u8]>],
    heads: &'a mut Vec<DocHead<'a>>,
) -> Result<Vec<Located<'a>>, InputError> {
    let mut elements = Vec::new();
    for (d, data) in docs.iter().enumerate() {
        let doc_path = if docs.len() > 1 {
            format!("documents[{d}]")
        } else {
            String::new()
        };
        let head: DocHead = serde_json::from_slice(data).map_err(|e| {
            let what = if e.is_syntax() || e.is_eof() {
                "malformed JSON"
            } else {
                "not a Kubernetes list"
            };
            InputError::new(doc_path.clone(), format!("{what}: {e}"))
        })?;
        let element = match head.kind.as_deref().unwrap_or("") {
            "List" => None,
            other => match Kind::from_list_kind(other) {
                Some(k) => Some(k),
                None => {
                    return Err(InputError::new(
                        join(&doc_path, "kind"),
                        format!(
                            "unsupported document kind {other:?} (expected List, NodeList, \
                             PodList, PodDisruptionBudgetList, PersistentVolumeClaimList, \
                             PersistentVolumeList or StorageClassList)"
                        ),
                    ))
                }
            },
        };
        elements.push((doc_path, element));
        heads.push(head);
    }
    let mut out = Vec::new();
    for (head, (doc_path, element)) in heads.iter().zip(elements) {
        let list_kind = head.kind.as_deref().unwrap_or("");
        for (i, raw) in head.items.iter().flatten().enumerate() {
            let path = join(&doc_path, &format!("items[{i}]"));
            out.push(Located {
                path,
                raw,
                list_kind,
                element,
            });
        }
    }
    Ok(out)
}

/// The kind of an item: its own `kind` field, which must agree with its list's.
fn item_kind(item: &Located) -> Result<Kind, InputError> {
    let head: ItemHead = parse_item(item.raw, &item.path)?;
    match (item.element, head.kind.as_deref()) {
        (Some(k), None) => Ok(k),
        (_, Some(kind)) => match Kind::from_item_kind(kind) {
            Some(k) if item.element.is_none_or(|e| e == k) => Ok(k),
            _ => {
                let expected = match item.element {
                    Some(e) => format!("{} in a {}", e.name(), item.list_kind),
                    None => "Node, Pod, PodDisruptionBudget, PersistentVolumeClaim, \
                             PersistentVolume or StorageClass"
                        .to_string(),
                };
                Err(InputError::new(
                    format!("{}.kind", item.path),
                    format!("unsupported kind {kind:?} (expected {expected})"),
                ))
            }
        },
        (None, None) => Err(InputError::new(
            &item.path,
            "missing field `kind` (items of a List must say what they are)",
        )),
    }
}

struct NodeRecord {
    name: String,
    resource_version: String,
    labels: Labels,
    taints: Vec<crate::model::taints::Taint>,
    unschedulable: bool,
    ready: bool,
    allocatable: SparseResources,
    gpu_devices: u32,
}

/// What the snapshot keeps of a pod, extracted in the parallel phase so the sequential merge only
/// moves values (and the rest of the parsed pod is freed in parallel too).
struct PodRecord {
    key: String,
    namespace: String,
    name: String,
    uid: String,
    resource_version: String,
    node_name: Option<String>,
    phase: crate::model::pod::PodPhase,
    priority: i32,
    created: Option<i64>,
    labels: Labels,
    owner: Option<crate::model::meta::OwnerReference>,
    request: EffectiveRequest,
    // Shared within the thread's run of items; the merge shares them across runs.
    node_selector: Arc<Labels>,
    affinity: Option<Arc<crate::model::affinity::Affinity>>,
    tolerations: Arc<[crate::model::taints::Toleration]>,
    spread: Arc<[crate::model::spread::TopologySpreadConstraint]>,
    host_ports: Vec<crate::model::pod::HostPort>,
    local_storage: crate::model::pod::LocalVolumes,
    claims: Vec<String>,
    scheduler_name: Option<String>,
    opt_out: Option<super::OptOut>,
    opt_in: bool,
    moved_at: Option<i64>,
    mirror: bool,
    terminating: bool,
    gpu_devices: Option<String>,
}

enum Record {
    Node(NodeRecord),
    Pod(Box<PodRecord>),
    Pdb(PodDisruptionBudget),
    Claim(PersistentVolumeClaim),
    Volume(PersistentVolume),
    Class(StorageClass),
}

fn node_record(node: Node, path: &str) -> Result<NodeRecord, InputError> {
    let mut allocatable = SparseResources::new();
    let mut gpu_devices = 0;
    let (field, list) = node.allocatable();
    for (name, q) in list.into_iter().flat_map(|l| l.iter()) {
        let field_path = format!("{path}.{field}.{name}");
        match name.as_str() {
            GPU_RESOURCE => {
                if q.milli() % 1000 != 0 || q.value() > i64::from(MAX_DEVICES) {
                    return Err(InputError::new(
                        field_path,
                        format!("{GPU_RESOURCE} must be a whole number of devices up to {MAX_DEVICES}, got \"{q}\""),
                    ));
                }
                gpu_devices = q.value() as u32;
            }
            // Derived from the device count; see docs/encoding.md.
            GPU_MILLI_RESOURCE => {}
            _ => allocatable.push((name.clone(), amount(name, *q))),
        }
    }
    // Taints are unique by key and effect (`validateNodeTaints`).
    let mut seen = std::collections::HashSet::with_capacity(node.spec.taints.len());
    for (i, t) in node.spec.taints.iter().enumerate() {
        if !seen.insert((t.key.as_str(), t.effect)) {
            return Err(InputError::new(
                format!("{path}.spec.taints[{i}]"),
                format!(
                    "Duplicate value: \"{}:{:?}\": taints must be unique by key and effect pair",
                    cut(&t.key),
                    t.effect
                ),
            ));
        }
    }
    let ready = node.ready();
    Ok(NodeRecord {
        ready,
        resource_version: node.metadata.resource_version.unwrap_or_default(),
        name: node.metadata.name,
        labels: node.metadata.labels,
        taints: node.spec.taints,
        unschedulable: node.spec.unschedulable,
        allocatable,
        gpu_devices,
    })
}

fn pod_record(
    pod: Pod,
    path: &str,
    shared: &mut SharedConstraints,
) -> Result<PodRecord, InputError> {
    let Pod {
        metadata: mut meta,
        spec,
        status,
    } = pod;
    let namespace = meta
        .namespace
        .take()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| InputError::new(format!("{path}.metadata"), "missing field `namespace`"))?;
    let request = spec.effective_request(&format!("{path}.spec"))?;
    let annotation = |key: &str| meta.annotations.get(key);
    Ok(PodRecord {
        key: format!("{namespace}/{}", meta.name),
        host_ports: spec.host_ports(),
        local_storage: spec.local_storage(),
        claims: spec.claims(),
        created: meta.creation_timestamp,
        terminating: meta.deletion_timestamp.is_some(),
        opt_out: if annotation(EVICT_ANNOTATION).is_some_and(|v| v == "false") {
            Some(super::OptOut::KubeEngine)
        } else if annotation(SAFE_TO_EVICT_ANNOTATION).is_some_and(|v| v == "false") {
            Some(super::OptOut::SafeToEvict)
        } else if annotation(DO_NOT_DISRUPT_ANNOTATION).is_some_and(|v| v == "true") {
            Some(super::OptOut::DoNotDisrupt)
        } else {
            None
        },
        // The descheduler evicts a pod with its annotation whatever the value; the cluster
        // autoscaler moves pods with local storage or no controller when they are marked safe.
        opt_in: annotation(DESCHEDULER_EVICT_ANNOTATION).is_some()
            || annotation(SAFE_TO_EVICT_ANNOTATION).is_some_and(|v| v == "true"),
        moved_at: match annotation(MOVED_AT_ANNOTATION) {
            None => None,
            Some(v) => Some(parse_timestamp(v).ok_or_else(|| {
                InputError::new(
                    format!("{path}.metadata.annotations.{MOVED_AT_ANNOTATION}"),
                    invalid_timestamp(v),
                )
            })?),
        },
        mirror: annotation(MIRROR_ANNOTATION).is_some(),
        gpu_devices: annotation(GPU_DEVICES_ANNOTATION).cloned(),
        owner: meta.controller().cloned(),
        namespace,
        name: meta.name,
        uid: meta.uid.unwrap_or_default(),
        resource_version: meta.resource_version.unwrap_or_default(),
        node_name: spec.node_name.filter(|n| !n.is_empty()),
        phase: status.phase,
        priority: spec.priority.unwrap_or(0),
        labels: meta.labels,
        request,
        // Shared where the values were parsed, so a duplicate is freed by the thread that made it.
        node_selector: shared.node_selector.share(spec.node_selector),
        affinity: spec.affinity.map(|a| shared.affinity.share(a)),
        tolerations: shared.tolerations.share(spec.tolerations),
        spread: shared.spread.share(spec.topology_spread_constraints),
        scheduler_name: spec.scheduler_name.filter(|n| !n.is_empty()),
    })
}

/// An object's name and namespace as kube-engine checks them: present, and path segments (no
/// `/`, no `%`, not `.` or `..`), which the API server asks of every object and which keeps
/// `namespace/name` keys unambiguous.
///
/// Deliberately lenient: the API server also holds most kinds' names to RFC 1123 (a Pod's, a
/// Node's: lower-case subdomains; a namespace: a label). kube-scheduler's own tests, and the
/// conformance suite ported from them, name nodes `nodeA` and namespaces `team1.sub1`; the
/// characters of a name change no scheduling rule, so they are taken as they are.
fn check_meta(meta: &ObjectMeta, path: &str) -> Result<(), InputError> {
    let at = |field: &str| format!("{path}.metadata.{field}");
    if meta.name.is_empty() {
        return Err(InputError::new(
            at("name"),
            "Required value: name or generateName is required",
        ));
    }
    let fields = [
        ("name", Some(meta.name.as_str())),
        ("namespace", meta.namespace.as_deref()),
    ];
    for (field, value) in fields {
        if let Some(value) = value {
            validation::path_segment_name(value)
                .map_err(|e| InputError::new(at(field), validation::invalid(value, &e)))?;
        }
    }
    Ok(())
}

/// One item of a kind, its name and namespace checked.
fn checked<T: DeserializeOwned>(
    item: &Located,
    meta: impl Fn(&T) -> &ObjectMeta,
) -> Result<T, InputError> {
    let object: T = parse_item(item.raw, &item.path)?;
    check_meta(meta(&object), &item.path)?;
    Ok(object)
}

fn record(item: &Located, shared: &mut SharedConstraints) -> Result<Record, InputError> {
    let path = item.path.as_str();
    Ok(match item_kind(item)? {
        Kind::Node => Record::Node(node_record(checked(item, |n: &Node| &n.metadata)?, path)?),
        Kind::Pod => {
            let pod: Pod = checked(item, |p: &Pod| &p.metadata)?;
            pod.spec.validate(&format!("{path}.spec"))?;
            Record::Pod(Box::new(pod_record(pod, path, shared)?))
        }
        Kind::Pdb => Record::Pdb(checked(item, |p: &PodDisruptionBudget| &p.metadata)?),
        Kind::Claim => Record::Claim(checked(item, |c: &PersistentVolumeClaim| &c.metadata)?),
        Kind::Volume => Record::Volume(checked(item, |v: &PersistentVolume| &v.metadata)?),
        Kind::Class => Record::Class(checked(item, |c: &StorageClass| &c.metadata)?),
    })
}

fn intern_labels(labels: &Labels, symbols: &mut Interner) -> SymLabels {
    let mut out: Vec<_> = labels
        .iter()
        .map(|(k, v)| (symbols.intern(k), symbols.intern(v)))
        .collect();
    out.sort_unstable_by_key(|&(k, _)| k);
    out.into_boxed_slice()
}

/// How strictly cross-object references are checked, and how much input is read.
#[derive(Clone, Copy, Debug)]
pub struct ParseOptions {
    /// A pod bound to a node the input does not have is an error. Otherwise (the default) the pod
    /// is left out of the snapshot and listed in [`Snapshot::left_out`]: a finished Job pod on a
    /// deleted node, or a node removed while a long list was read, is no reason to refuse the
    /// rest of the cluster.
    pub strict: bool,
    /// The most bytes one document may hold, once inflated when it is gzip: beyond it the
    /// input is refused ([`DEFAULT_MAX_INPUT_BYTES`] by default).
    pub max_input_bytes: u64,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            strict: false,
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
        }
    }
}

/// Parses one or more documents (plain or gzip JSON) into a snapshot, with default options.
pub fn parse_documents(docs: &[&[u8]]) -> Result<Snapshot, Error> {
    parse_documents_with(docs, ParseOptions::default())
}

/// Parses one or more documents (plain or gzip JSON) into a snapshot.
pub fn parse_documents_with(docs: &[&[u8]], opts: ParseOptions) -> Result<Snapshot, Error> {
    let docs: Vec<Cow<[u8]>> = docs
        .iter()
        .enumerate()
        .map(|(d, data)| {
            decompress_limited(data, opts.max_input_bytes).map_err(|mut e| {
                if docs.len() > 1 {
                    e.path = format!("documents[{d}]");
                }
                e
            })
        })
        .collect::<Result<_, _>>()?;
    let mut heads = Vec::with_capacity(docs.len());
    let items = locate(&docs, &mut heads)?;
    let results: Vec<Result<Record, InputError>> = items
        .par_iter()
        .map_init(SharedConstraints::default, |shared, item| {
            record(item, shared)
        })
        .collect();
    // The first bad item in input order, whatever the thread count.
    let records = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(build(&items, records, opts)?)
}

/// Adds `value` under `key`, refusing a second object of the same name.
fn unique<T>(
    map: &mut HashMap<String, (T, String)>,
    key: String,
    value: T,
    path: &str,
    kind: &str,
) -> Result<(), InputError> {
    if let Some((_, first)) = map.get(&key) {
        return Err(InputError::new(
            format!("{path}.metadata.name"),
            format!("duplicate {kind} {key:?} (first at {first})"),
        ));
    }
    map.insert(key, (value, path.to_string()));
    Ok(())
}

/// Merges records into columns, in input order, checking cross-object rules.
fn build(
    items: &[Located],
    records: Vec<Record>,
    opts: ParseOptions,
) -> Result<Snapshot, InputError> {
    let mut s = Snapshot {
        resources: ResourceNames::default(),
        ..Default::default()
    };
    let mut nodes = Vec::new();
    let mut pods = Vec::new();
    let mut pdbs = Vec::new();
    for (item, rec) in items.iter().zip(records) {
        let path = item.path.as_str();
        match rec {
            Record::Node(n) => nodes.push((path, n)),
            Record::Pod(p) => pods.push((path, p)),
            Record::Pdb(p) => pdbs.push((path, p)),
            Record::Claim(c) => {
                let ns = c.metadata.namespace.clone().unwrap_or_default();
                if ns.is_empty() {
                    return Err(InputError::new(
                        format!("{path}.metadata"),
                        "missing field `namespace`",
                    ));
                }
                let key = format!("{ns}/{}", c.metadata.name);
                s.volumes.described = true;
                unique(&mut s.volumes.claims, key, c, path, "PersistentVolumeClaim")?;
            }
            Record::Volume(v) => {
                let key = v.metadata.name.clone();
                unique(&mut s.volumes.volumes, key, v, path, "PersistentVolume")?;
            }
            Record::Class(c) => {
                let key = c.metadata.name.clone();
                unique(&mut s.volumes.classes, key, c, path, "StorageClass")?;
            }
        }
    }
    // Nodes' and pods' amounts are dense rows, one column per resource name: a bound on the
    // names keeps a small input naming many of them from making rows × names memory.
    let mut register = |name: &str, at: String| {
        s.resources.id(name);
        if s.resources.len() > MAX_RESOURCE_NAMES {
            return Err(InputError::new(
                at,
                format!(
                    "more than {MAX_RESOURCE_NAMES} resource names in one snapshot (the limit on \
                     resource names), with \"{}\"",
                    cut(name)
                ),
            ));
        }
        Ok(())
    };
    for (path, n) in &nodes {
        for (name, _) in &n.allocatable {
            register(name, format!("{path}.status.allocatable"))?;
        }
    }
    for (path, p) in &pods {
        for (name, _) in &p.request.resources {
            register(name, format!("{path}.spec"))?;
        }
    }
    let width = s.resources.len();

    // Nodes.
    let mut node_paths: Vec<&str> = Vec::with_capacity(nodes.len());
    s.nodes.allocatable = ResourceMatrix::with_capacity(width, nodes.len());
    for (path, n) in nodes {
        if let Some(&first) = s.nodes.index.get(&n.name) {
            return Err(InputError::new(
                format!("{path}.metadata.name"),
                format!(
                    "duplicate node {:?} (first at {})",
                    n.name, node_paths[first as usize]
                ),
            ));
        }
        let id = s.nodes.name.len() as NodeId;
        s.nodes.index.insert(n.name.clone(), id);
        node_paths.push(path);
        s.nodes
            .allocatable
            .push_sparse(&n.allocatable, &s.resources);
        s.nodes
            .gpu_model
            .push(n.labels.get(GPU_MODEL_LABEL).map(|m| s.symbols.intern(m)));
        s.nodes
            .labels
            .push(intern_labels(&n.labels, &mut s.symbols));
        s.nodes.name.push(n.name);
        s.nodes.resource_version.push(n.resource_version);
        s.nodes.taints.push(n.taints);
        s.nodes.unschedulable.push(n.unschedulable);
        s.nodes.ready.push(n.ready);
        s.nodes.gpu_devices.push(n.gpu_devices);
        s.nodes.control_plane.push(
            CONTROL_PLANE_LABELS
                .iter()
                .any(|k| n.labels.get(k).is_some()),
        );
    }

    // Pods.
    let count = pods.len();
    let p = &mut s.pods;
    p.requests = ResourceMatrix::with_capacity(width, count);
    let mut pod_paths: Vec<&str> = Vec::with_capacity(count);
    let mut device_annotations: Vec<Option<String>> = Vec::with_capacity(count);
    let default_scheduler = s.symbols.intern("default-scheduler");
    p.index.reserve(count);
    let mut shared = SharedConstraints::default();
    for (path, rec) in pods {
        let r = *rec;
        if let Some(&first) = p.index.get(&r.key) {
            return Err(InputError::new(
                format!("{path}.metadata.name"),
                format!(
                    "duplicate pod {:?} (first at {})",
                    r.key, pod_paths[first as usize]
                ),
            ));
        }
        let node = match r.node_name {
            None => None,
            Some(name) => match s.nodes.id(&name) {
                Some(n) => Some(n),
                None if opts.strict => {
                    return Err(InputError::new(
                        format!("{path}.spec.nodeName"),
                        format!("pod {:?} is bound to unknown node {name:?}", r.key),
                    ))
                }
                None => {
                    s.left_out.push(super::LeftOut {
                        pod: r.key,
                        node: name,
                        path: path.to_string(),
                    });
                    continue;
                }
            },
        };
        p.index.insert(r.key, p.name.len() as u32);
        pod_paths.push(path);
        s.current.node.push(node);
        p.namespace.push(s.symbols.intern(&r.namespace));
        p.name.push(r.name);
        p.uid.push(r.uid);
        p.resource_version.push(r.resource_version);
        p.phase.push(r.phase);
        p.priority.push(r.priority);
        p.created.push(r.created);
        p.labels.push(intern_labels(&r.labels, &mut s.symbols));
        p.owner.push(r.owner.map(|o| Owner {
            kind: s.symbols.intern(&o.kind),
            name: o.name,
            uid: o.uid,
        }));
        p.requests.push_sparse(&r.request.resources, &s.resources);
        p.gpu.push(r.request.gpu);
        p.nonzero.push(r.request.nonzero);
        p.node_selector
            .push(shared.node_selector.share(r.node_selector));
        p.affinity
            .push(r.affinity.map(|a| shared.affinity.share(a)));
        p.tolerations.push(shared.tolerations.share(r.tolerations));
        p.spread.push(shared.spread.share(r.spread));
        p.host_ports.push(r.host_ports);
        p.local_storage.push(r.local_storage);
        p.claims.push(r.claims.into_boxed_slice());
        p.scheduler_name.push(match r.scheduler_name {
            None => default_scheduler,
            Some(name) => s.symbols.intern(&name),
        });
        p.opt_out.push(r.opt_out);
        p.opt_in.push(r.opt_in);
        p.moved_at.push(r.moved_at);
        p.mirror.push(r.mirror);
        p.terminating.push(r.terminating);
        device_annotations.push(r.gpu_devices);
    }
    super::devices::assign_at_load(&mut s, &pod_paths, &device_annotations)?;
    super::limits::check(
        &s,
        |n| node_paths[n as usize].to_string(),
        |p| pod_paths[p as usize].to_string(),
    )?;

    // PodDisruptionBudgets.
    let mut pdb_index: HashMap<String, &str> = HashMap::new();
    for (path, pdb) in pdbs {
        let key = format!(
            "{}/{}",
            pdb.metadata.namespace.as_deref().unwrap_or(""),
            pdb.metadata.name
        );
        if pdb.metadata.namespace.as_deref().unwrap_or("").is_empty() {
            return Err(InputError::new(
                format!("{path}.metadata"),
                "missing field `namespace`",
            ));
        }
        if let Some(first) = pdb_index.insert(key.clone(), path) {
            return Err(InputError::new(
                format!("{path}.metadata.name"),
                format!("duplicate PodDisruptionBudget {key:?} (first at {first})"),
            ));
        }
        s.pdbs.push(pdb);
    }
    Ok(s)
}
