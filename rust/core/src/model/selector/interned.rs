//! Label selectors over interned labels, the matcher the inter-pod plugins run in their hot
//! loops: it compares the symbols a snapshot's labels were interned to, not strings. It must
//! agree with the string matcher of [`super::LabelSelector`] on every label set.

use std::hash::{Hash, Hasher};

use super::{LabelSelector, SelectorOperator};
use crate::intern::{Interner, Sym};

/// The value of `key` in interned labels sorted by key.
fn label_value(labels: &[(Sym, Sym)], key: Sym) -> Option<Sym> {
    labels
        .binary_search_by_key(&key, |&(k, _)| k)
        .ok()
        .map(|i| labels[i].1)
}

/// A label selector over interned labels (`SymLabels`, sorted by key).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct InternedSelector {
    requirements: Vec<InternedRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct InternedRequirement {
    /// `None`: no object has the key, so it is absent everywhere.
    key: Option<Sym>,
    operator: SelectorOperator,
    /// Sorted, without repeats; values never interned are dropped: no label has them.
    values: Vec<Sym>,
}

impl Hash for InternedRequirement {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key.hash(h);
        h.write_u8(self.operator as u8);
        self.values.hash(h);
    }
}

impl InternedSelector {
    pub(crate) fn new(selector: &LabelSelector, symbols: &Interner) -> Self {
        InternedSelector {
            requirements: selector
                .requirements
                .iter()
                .map(|r| {
                    let mut values: Vec<Sym> =
                        r.values.iter().filter_map(|v| symbols.get(v)).collect();
                    // `In (a, a)` is legal; the candidate lists must not repeat.
                    values.sort_unstable();
                    values.dedup();
                    InternedRequirement {
                        key: symbols.get(&r.key),
                        operator: r.operator,
                        values,
                    }
                })
                .collect(),
        }
    }

    /// Merges `matchLabelKeys` (`key In (v)`) and `mismatchLabelKeys` (`key NotIn (v)`) with the
    /// values `own` (the owning pod's labels) has; keys it lacks are ignored.
    pub(crate) fn merge_label_keys(
        &mut self,
        symbols: &Interner,
        own: &[(Sym, Sym)],
        match_keys: &[String],
        mismatch_keys: &[String],
    ) {
        let keyed = [
            (match_keys, SelectorOperator::In),
            (mismatch_keys, SelectorOperator::NotIn),
        ];
        for (keys, operator) in keyed {
            for k in keys {
                let Some(key) = symbols.get(k) else { continue };
                if let Some(v) = label_value(own, key) {
                    self.requirements.push(InternedRequirement {
                        key: Some(key),
                        operator,
                        values: vec![v],
                    });
                }
            }
        }
    }

    /// No requirements: matches every label set (`labels.Everything()`).
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub(crate) fn matches(&self, labels: &[(Sym, Sym)]) -> bool {
        self.requirements.iter().all(|r| {
            let v = r.key.and_then(|k| label_value(labels, k));
            match r.operator {
                SelectorOperator::In => v.is_some_and(|v| r.values.contains(&v)),
                SelectorOperator::NotIn => v.is_none_or(|v| !r.values.contains(&v)),
                SelectorOperator::Exists => v.is_some(),
                SelectorOperator::DoesNotExist => v.is_none(),
            }
        })
    }

    /// The `(key, values)` of each `In` requirement: a matching pod has one of these labels.
    /// `None` for the key: the requirement (and so the selector) matches nothing.
    pub(crate) fn in_requirements(&self) -> impl Iterator<Item = (Option<Sym>, &[Sym])> {
        self.requirements
            .iter()
            .filter(|r| r.operator == SelectorOperator::In)
            .map(|r| (r.key, r.values.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::model::meta::KeyValues;

    fn interned(symbols: &mut Interner, pairs: &[(&str, &str)]) -> Vec<(Sym, Sym)> {
        let mut v: Vec<(Sym, Sym)> = pairs
            .iter()
            .map(|(k, val)| (symbols.intern(k), symbols.intern(val)))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn interned_selector_agrees_with_the_string_selector() {
        let mut symbols = Interner::default();
        let sets = [
            vec![("app", "web"), ("tier", "fe")],
            vec![("app", "web")],
            vec![("app", "db"), ("canary", "1")],
            vec![],
        ];
        let interned_sets: Vec<_> = sets.iter().map(|s| interned(&mut symbols, s)).collect();
        let selectors = [
            r#"{}"#,
            r#"{"matchLabels":{"app":"web"}}"#,
            r#"{"matchExpressions":[{"key":"tier","operator":"In","values":["fe","never-seen"]}]}"#,
            r#"{"matchExpressions":[{"key":"tier","operator":"NotIn","values":["fe"]}]}"#,
            r#"{"matchExpressions":[{"key":"canary","operator":"Exists"}]}"#,
            r#"{"matchExpressions":[{"key":"canary","operator":"DoesNotExist"}]}"#,
            r#"{"matchExpressions":[{"key":"unknown-key","operator":"NotIn","values":["x"]}]}"#,
            r#"{"matchExpressions":[{"key":"unknown-key","operator":"Exists"}]}"#,
        ];
        for json in selectors {
            let sel: LabelSelector = serde_json::from_str(json).unwrap();
            let fast = InternedSelector::new(&sel, &symbols);
            for (plain, syms) in sets.iter().zip(&interned_sets) {
                let kv = KeyValues::from_pairs(plain);
                assert_eq!(fast.matches(syms), sel.matches(&kv), "{json} on {plain:?}");
            }
        }
    }

    #[test]
    fn label_keys_merge_with_the_owners_values() {
        let mut symbols = Interner::default();
        let own = interned(&mut symbols, &[("app", "web"), ("version", "v2")]);
        let same = interned(&mut symbols, &[("app", "web"), ("version", "v2")]);
        let other = interned(&mut symbols, &[("app", "web"), ("version", "v1")]);
        let sel: LabelSelector = serde_json::from_str(r#"{"matchLabels":{"app":"web"}}"#).unwrap();
        let mut s = InternedSelector::new(&sel, &symbols);
        s.merge_label_keys(&symbols, &own, &["version".into(), "absent".into()], &[]);
        assert!(s.matches(&same));
        assert!(!s.matches(&other));
        let mut s = InternedSelector::new(&sel, &symbols);
        s.merge_label_keys(&symbols, &own, &[], &["version".into()]);
        assert!(!s.matches(&same));
        assert!(s.matches(&other));
    }

    /// Keys and values the random label sets use, and one more of each that no label has (so it
    /// is never interned).
    const KEYS: [&str; 5] = ["app", "tier", "zone", "env", "never-labelled"];
    const VALUES: [&str; 5] = ["a", "b", "c", "", "never-labelled"];

    fn label_set() -> impl Strategy<Value = BTreeMap<&'static str, &'static str>> {
        let key = prop::sample::select(&KEYS[..4]);
        let value = prop::sample::select(&VALUES[..4]);
        prop::collection::btree_map(key, value, 0..=4)
    }

    /// A `matchExpressions` entry: In and NotIn with one to three values (repeats allowed, as the
    /// API allows them), Exists and DoesNotExist with none.
    fn requirement() -> impl Strategy<Value = Value> {
        let values = prop::collection::vec(prop::sample::select(&VALUES[..]), 1..=3);
        (prop::sample::select(&KEYS[..]), 0..4u8, values).prop_map(|(key, op, values)| match op {
            0 => json!({"key": key, "operator": "In", "values": values}),
            1 => json!({"key": key, "operator": "NotIn", "values": values}),
            2 => json!({"key": key, "operator": "Exists"}),
            _ => json!({"key": key, "operator": "DoesNotExist"}),
        })
    }

    /// A `metav1.LabelSelector` as JSON: `matchLabels` and `matchExpressions`, either may be empty.
    fn selector() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(&KEYS[..]);
        let value = prop::sample::select(&VALUES[..]);
        let match_labels = prop::collection::btree_map(key, value, 0..=2);
        let match_expressions = prop::collection::vec(requirement(), 0..=3);
        (match_labels, match_expressions).prop_map(
            |(labels, expressions)| json!({"matchLabels": labels, "matchExpressions": expressions}),
        )
    }

    proptest! {
        #[test]
        fn interned_and_string_matchers_agree(
            sets in prop::collection::vec(label_set(), 1..=4),
            selector in selector(),
        ) {
            let mut symbols = Interner::default();
            let pairs: Vec<Vec<(&str, &str)>> = sets
                .iter()
                .map(|set| set.iter().map(|(&k, &v)| (k, v)).collect())
                .collect();
            let interned_sets: Vec<_> = pairs.iter().map(|p| interned(&mut symbols, p)).collect();
            let sel: LabelSelector = serde_json::from_value(selector.clone()).unwrap();
            let fast = InternedSelector::new(&sel, &symbols);
            for (plain, syms) in pairs.iter().zip(&interned_sets) {
                let slow = sel.matches(&KeyValues::from_pairs(plain));
                prop_assert_eq!(fast.matches(syms), slow, "{} on {:?}", selector, plain);
            }
        }
    }
}
