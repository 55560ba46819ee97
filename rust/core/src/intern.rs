//! String interning: label keys and values, namespaces and resource names become small integers,
//! so hot code compares `u32`s instead of strings.

use crate::hash::IdMap;

/// An interned string; only meaningful with the [`Interner`] that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(pub u32);

#[derive(Clone, Debug, Default)]
pub struct Interner {
    strings: Vec<Box<str>>,
    index: IdMap<Box<str>, Sym>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.index.get(s) {
            return sym;
        }
        let sym = Sym(u32::try_from(self.strings.len()).expect("more than 2^32 distinct strings"));
        self.strings.push(s.into());
        self.index.insert(s.into(), sym);
        sym
    }

    /// The symbol of `s` if it was ever interned. A selector value that was never interned cannot
    /// match any label, which lets callers skip work.
    pub fn get(&self, s: &str) -> Option<Sym> {
        self.index.get(s).copied()
    }

    pub fn resolve(&self, sym: Sym) -> &str {
        &self.strings[sym.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_string_same_symbol() {
        let mut i = Interner::default();
        let a = i.intern("app");
        let b = i.intern("web");
        assert_ne!(a, b);
        assert_eq!(i.intern("app"), a);
        assert_eq!(i.resolve(b), "web");
        assert_eq!(i.get("web"), Some(b));
        assert_eq!(i.get("db"), None);
        assert_eq!(i.len(), 2);
    }
}
