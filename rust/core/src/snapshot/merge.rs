//! Raw list handling that needs no model: merging paginated list pages into one `List` document
//! (what `kubectl get nodes,pods,pdb -A -o json` prints), and reading a page's continue token.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::ingest::decompress;
use crate::error::InputError;

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct ItemKind {
    #[serde(default)]
    kind: Option<String>,
}

/// `(apiVersion, kind)` of the items of a typed list. API list responses omit them per item.
fn element_of(list_kind: &str) -> Option<(&'static str, &'static str)> {
    match list_kind {
        "NodeList" => Some(("v1", "Node")),
        "PodList" => Some(("v1", "Pod")),
        "PodDisruptionBudgetList" => Some(("policy/v1", "PodDisruptionBudget")),
        "PersistentVolumeClaimList" => Some(("v1", "PersistentVolumeClaim")),
        "PersistentVolumeList" => Some(("v1", "PersistentVolume")),
        "StorageClassList" => Some(("storage.k8s.io/v1", "StorageClass")),
        _ => None,
    }
}

/// One `List` holding every item of `pages`, each item with its `apiVersion` and `kind`.
pub fn merge_lists(pages: &[&[u8]]) -> Result<Vec<u8>, InputError> {
    let total: usize = pages.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(total + 1024);
    out.extend_from_slice(
        br#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},"items":["#,
    );
    let mut first = true;
    for (d, data) in pages.iter().enumerate() {
        let path = format!("documents[{d}]");
        let data = decompress(data).map_err(|e| InputError::new(&path, e.message))?;
        let page: Page = serde_json::from_slice(&data)
            .map_err(|e| InputError::new(&path, format!("malformed JSON: {e}")))?;
        let list_kind = page.kind.unwrap_or_default();
        let element = element_of(&list_kind);
        if element.is_none() && list_kind != "List" {
            return Err(InputError::new(
                format!("{path}.kind"),
                format!("unsupported document kind {list_kind:?}"),
            ));
        }
        for (i, item) in page.items.unwrap_or_default().into_iter().enumerate() {
            if !first {
                out.push(b',');
            }
            first = false;
            let text = item.get();
            let has_kind = serde_json::from_str::<ItemKind>(text)
                .map_err(|e| InputError::new(format!("{path}.items[{i}]"), e.to_string()))?
                .kind
                .is_some();
            match element {
                Some((api_version, kind)) if !has_kind => {
                    let body = text.trim_start().strip_prefix('{').ok_or_else(|| {
                        InputError::new(format!("{path}.items[{i}]"), "item is not an object")
                    })?;
                    out.extend_from_slice(
                        format!(r#"{{"apiVersion":"{api_version}","kind":"{kind}""#).as_bytes(),
                    );
                    if !body.trim_start().starts_with('}') {
                        out.push(b',');
                    }
                    out.extend_from_slice(body.as_bytes());
                }
                _ => out.extend_from_slice(text.as_bytes()),
            }
        }
    }
    out.extend_from_slice(b"]}\n");
    Ok(out)
}

#[derive(Deserialize)]
#[serde(expecting = "a list object")]
struct PageHead {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<ListMeta>,
    #[serde(default)]
    items: Option<Vec<IgnoredAny>>,
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

/// What a paginating reader needs of one list page: its `kind`, its `metadata.continue` token
/// (`None` on the last page) and how many items it holds.
#[derive(Debug, PartialEq, Eq)]
pub struct PageSummary {
    pub kind: Option<String>,
    pub continue_token: Option<String>,
    pub items: usize,
}

/// Reads a list page's kind, continue token and item count (the items themselves are skipped).
pub fn list_page(page: &[u8]) -> Result<PageSummary, InputError> {
    let head: PageHead = serde_json::from_slice(page)
        .map_err(|e| InputError::new("", format!("malformed JSON: {e}")))?;
    Ok(PageSummary {
        kind: head.kind,
        continue_token: head
            .metadata
            .and_then(|m| m.continue_token)
            .filter(|t| !t.is_empty()),
        items: head.items.map_or(0, |items| items.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_pages_and_injects_kinds() {
        let a = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"continue":"x"},"items":[{"metadata":{"name":"a"}},{}]}"#;
        let b = br#"{"kind":"List","items":[{"kind":"Node","metadata":{"name":"n"}}]}"#;
        let merged = merge_lists(&[a, b]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(v["kind"], "List");
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["kind"], "Pod");
        assert_eq!(items[0]["apiVersion"], "v1");
        assert_eq!(items[0]["metadata"]["name"], "a");
        assert_eq!(items[1]["kind"], "Pod");
        assert_eq!(items[2]["kind"], "Node");
    }

    #[test]
    fn rejects_unknown_documents() {
        let e = merge_lists(&[br#"{"kind":"ServiceList","items":[]}"#]).unwrap_err();
        assert_eq!(e.path, "documents[0].kind");
        assert!(merge_lists(&[b"{"]).is_err());
    }

    #[test]
    fn page_summaries() {
        let page = list_page(
            br#"{"kind":"PodList","metadata":{"continue":"abc"},"items":[{"x":[1,2]},{}]}"#,
        )
        .unwrap();
        assert_eq!(
            page,
            PageSummary {
                kind: Some("PodList".into()),
                continue_token: Some("abc".into()),
                items: 2
            }
        );
        let last = list_page(br#"{"metadata":{"continue":""},"items":null}"#).unwrap();
        assert_eq!(
            (last.kind, last.continue_token, last.items),
            (None, None, 0)
        );
        assert!(list_page(b"nope").is_err());
        let number = list_page(b"2").unwrap_err();
        assert!(
            number.message.contains("expected a list object"),
            "{}",
            number.message
        );
        assert!(list_page(br#"{"items":5}"#).is_err());
    }
}
