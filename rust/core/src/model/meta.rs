//! Object metadata and the small JSON helpers every object uses.

use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, MapAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use super::validation;
use crate::error::cut;
use crate::quantity::Quantity;

/// A JSON object kept as ordered (key, value) pairs: label maps and resource lists are small, so a
/// vector beats a hash map and keeps the input order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyValues<V>(pub Vec<(String, V)>);

impl KeyValues<String> {
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        KeyValues(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl<V> KeyValues<V> {
    /// A scan: for the few keys a caller looks up. Many look-ups go through [`Self::index`].
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = &(String, V)> {
        self.0.iter()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Look-ups by key that stay linear overall however long the map is: a scan while it is
    /// short, a hash index when it is long.
    pub fn index(&self) -> KeyIndex<'_, V> {
        let hashed = (self.0.len() > SCAN).then(|| {
            self.0
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect::<HashMap<_, _>>()
        });
        KeyIndex {
            pairs: self,
            hashed,
        }
    }
}

/// See [`KeyValues::index`].
pub struct KeyIndex<'a, V> {
    pairs: &'a KeyValues<V>,
    hashed: Option<HashMap<&'a str, &'a V>>,
}

impl<'a, V> KeyIndex<'a, V> {
    pub fn get(&self, key: &str) -> Option<&'a V> {
        match &self.hashed {
            Some(map) => map.get(key).copied(),
            None => self.pairs.get(key),
        }
    }
}

/// Maps up to this long are scanned rather than hashed: cheaper for the few keys most have.
const SCAN: usize = 16;

impl<'de, V: Deserialize<'de>> Deserialize<'de> for KeyValues<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = KeyValues<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(KeyValues(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(entry) = map.next_entry::<String, V>()? {
                    out.push(entry);
                }
                Ok(KeyValues(keep_last(out)))
            }
        }
        d.deserialize_any(V2(PhantomData))
    }
}

/// JSON allows repeated keys; Go's decoder (and so the API server) keeps the last value. Each key
/// stays where it first appeared. Linear in the number of pairs: label and annotation maps come
/// from the input, and a node with 100,000 labels must not cost 10^10 comparisons.
fn keep_last<V>(pairs: Vec<(String, V)>) -> Vec<(String, V)> {
    if pairs.len() <= SCAN {
        let mut out: Vec<(String, V)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        return out;
    }
    // The keys are the input's, so the hasher is std's, which resists flooding.
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(pairs.len());
    // For each pair, where its value goes: the first position of its key.
    let target: Vec<usize> = pairs
        .iter()
        .enumerate()
        .map(|(i, (k, _))| *first.entry(k.as_str()).or_insert(i))
        .collect();
    drop(first);
    if target.iter().enumerate().all(|(i, &t)| i == t) {
        return pairs;
    }
    let mut slots: Vec<Option<(String, V)>> = pairs.into_iter().map(Some).collect();
    for i in 0..slots.len() {
        if target[i] != i {
            let (_, v) = slots[i].take().expect("each pair moves once");
            if let Some(slot) = slots[target[i]].as_mut() {
                slot.1 = v;
            }
        }
    }
    slots.into_iter().flatten().collect()
}

/// Labels: string keys and values.
pub type Labels = KeyValues<String>;

/// `null` where a list or object is expected means "empty", as in Go's JSON decoding.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A resource list (requests, limits, overhead, allocatable) whose amounts must not be negative,
/// as the API server requires; `null` is empty.
pub fn non_negative_quantities<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<KeyValues<Quantity>, D::Error> {
    Ok(non_negative_quantities_or_null(d)?.unwrap_or_default())
}

/// [`non_negative_quantities`], keeping `null` apart from an empty list.
pub fn non_negative_quantities_or_null<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<KeyValues<Quantity>>, D::Error> {
    let list = Option::<KeyValues<NonNegative>>::deserialize(d)?;
    Ok(list.map(|l| KeyValues(l.0.into_iter().map(|(k, v)| (k, v.0)).collect())))
}

/// A quantity refused when negative while its text is still at hand: the message names `-1Gi`,
/// as written, not the number of bytes it stands for.
struct NonNegative(Quantity);

impl<'de> Deserialize<'de> for NonNegative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = d.deserialize_any(WrittenVisitor)?;
        let q = match &written {
            Written::Text(s) => Quantity::deserialize(s.as_ref().into_deserializer()),
            Written::Int(i) => Quantity::deserialize(i.into_deserializer()),
            Written::Float(f) => Quantity::deserialize(f.into_deserializer()),
        }?;
        if q.is_negative() {
            let text = match written {
                Written::Text(s) => s.into_owned(),
                Written::Int(i) => i.to_string(),
                Written::Float(f) => f.to_string(),
            };
            return Err(de::Error::custom(format!(
                "Invalid value: \"{}\": must be greater than or equal to 0",
                cut(&text)
            )));
        }
        Ok(NonNegative(q))
    }
}

enum Written<'de> {
    Text(Cow<'de, str>),
    Int(i128),
    Float(f64),
}

struct WrittenVisitor;

impl<'de> Visitor<'de> for WrittenVisitor {
    type Value = Written<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes quantity (a string such as \"100m\" or \"1Gi\", or a number)")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Written::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Written::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Written::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Written::Int(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Written::Float(v))
    }
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default, deserialize_with = "valid_labels")]
    pub labels: Labels,
    #[serde(default, deserialize_with = "valid_annotations")]
    pub annotations: Labels,
    #[serde(default, deserialize_with = "null_default")]
    pub owner_references: Vec<OwnerReference>,
    /// Seconds since the epoch. A timestamp that is not RFC 3339 is refused, as the API
    /// server's decoding refuses it: read as absent it would reorder the scheduling queue.
    #[serde(default, deserialize_with = "rfc3339")]
    pub creation_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "rfc3339")]
    pub deletion_timestamp: Option<i64>,
}

/// `metav1.Time`: an RFC 3339 string, or `null` for none.
fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Cow<'de, str>>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_timestamp(&text)
            .map(Some)
            .ok_or_else(|| de::Error::custom(invalid_timestamp(&text))),
    }
}

/// Why `text` is not a timestamp, in the words every timestamp check uses.
pub fn invalid_timestamp(text: &str) -> String {
    format!(
        "invalid timestamp \"{}\" (expected RFC 3339, e.g. 2026-01-01T00:00:00Z)",
        cut(text)
    )
}

/// Labels (`metadata.labels`, a pod's `nodeSelector`), checked as the API server checks them:
/// keys are qualified names, values label values.
pub fn valid_labels<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
    let labels: Labels = null_default(d)?;
    for (k, v) in labels.iter() {
        validation::qualified_name(k)
            .and_then(|()| validation::label_value(v))
            .map_err(|detail| {
                let value = if validation::qualified_name(k).is_err() {
                    k
                } else {
                    v
                };
                de::Error::custom(validation::invalid(value, &detail))
            })?;
    }
    Ok(labels)
}

/// `metadata.annotations`, checked as the API server checks them: keys are qualified names
/// (lower-cased first), and all of them together hold at most 256 KiB.
fn valid_annotations<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
    let annotations: Labels = null_default(d)?;
    let mut size = 0usize;
    for (k, v) in annotations.iter() {
        validation::qualified_name(&k.to_ascii_lowercase())
            .map_err(|detail| de::Error::custom(validation::invalid(k, &detail)))?;
        size += k.len() + v.len();
    }
    if size > validation::ANNOTATIONS_MAX_BYTES {
        return Err(de::Error::custom(format!(
            "Too long: may not be more than {} bytes",
            validation::ANNOTATIONS_MAX_BYTES
        )));
    }
    Ok(annotations)
}

impl ObjectMeta {
    /// The managing controller (the owner reference with `controller: true`).
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.owner_references
            .iter()
            .find(|o| o.controller == Some(true))
    }
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp as the API server writes them
/// (`2023-01-01T00:00:00Z`, optionally with fractional seconds or a numeric offset).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Go's time.Parse, which the API server decodes with, knows month lengths and no leap
    // second.
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&mo) || !(1..=month_days).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("2023-01-01T00:00:00Z"), Some(1_672_531_200));
        assert_eq!(
            parse_timestamp("2023-01-01T01:00:00+01:00"),
            Some(1_672_531_200)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:30:15.123456Z"),
            Some(1_709_209_815)
        );
        assert_eq!(parse_timestamp("2023-13-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2023-04-31T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2023-01-01T00:00:60Z"), None);
        assert_eq!(parse_timestamp("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn key_values_keep_last_duplicate_and_accept_null() {
        let kv: KeyValues<String> = serde_json::from_str(r#"{"a":"1","b":"2","a":"3"}"#).unwrap();
        assert_eq!(
            kv.0,
            vec![("a".into(), "3".into()), ("b".into(), "2".into())]
        );
        let kv: KeyValues<String> = serde_json::from_str("null").unwrap();
        assert!(kv.is_empty());
    }

    #[test]
    fn long_maps_keep_the_last_duplicate_in_first_place() {
        // Past the scanned length, duplicates are found by hashing.
        let mut json: Vec<String> = (0..100).map(|i| format!(r#""k{i}":"{i}""#)).collect();
        json.push(r#""k5":"last""#.into());
        json.push(r#""k99":"again""#.into());
        let kv: KeyValues<String> =
            serde_json::from_str(&format!("{{{}}}", json.join(","))).unwrap();
        assert_eq!(kv.len(), 100);
        assert_eq!(kv.0[5], ("k5".to_string(), "last".to_string()));
        assert_eq!(kv.0[99], ("k99".to_string(), "again".to_string()));
        assert_eq!(kv.index().get("k5").map(String::as_str), Some("last"));
        assert_eq!(kv.index().get("k100"), None);
        assert_eq!(kv.0[6], ("k6".to_string(), "6".to_string()));
    }
}
