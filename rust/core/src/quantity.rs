//! Kubernetes resource quantities (`500m`, `1.5Gi`, `129e6`, ...), parsed exactly.
//!
//! A [`Quantity`] is an exact number of milli-units held in an `i128`. Milli-units are the finest
//! resolution kube-scheduler ever looks at (`MilliValue()` for CPU, `Value()` for everything
//! else), so finer digits only matter for rounding; and every parsed quantity, capped at
//! (2^63 − 1) × 1000 milli-units, fits an `i128` with ample headroom for sums.
//!
//! The rules follow `k8s.io/apimachinery/pkg/api/resource`:
//! * grammar `<sign>?<digits>[.<digits>]<suffix>`, the suffix being a binary SI suffix
//!   (`Ki` .. `Ei`), a decimal SI suffix (`n u m k M G T P E` or none) or a decimal exponent
//!   (`e3`, `E-3`, `e+3`);
//! * a non-zero magnitude is rounded up, never to zero: Kubernetes rounds a parsed quantity up to
//!   the next nano and `MilliValue()` / `Value()` round up again, so the net effect at milli
//!   resolution is `ceil(|x| × 1000)` with the sign put back;
//! * the magnitude is capped at 2^63 − 1 base units, the largest value Kubernetes keeps.
//!
//! No floating point is involved anywhere: any number of digits is read without overflow, and
//! no input makes the parser panic.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// Kubernetes caps a parsed quantity's magnitude at the largest int64 count of base units.
const MAX_UNITS: i128 = i64::MAX as i128;
const MAX_MILLI: i128 = MAX_UNITS * 1000;

/// Whole milli-unit digits worth computing: a value with more than this many digits is at least
/// 10^25 milli-units, far past `MAX_MILLI` (about 9.2 × 10^21), and 25 digits fit an `i128`.
const MAX_WHOLE_DIGITS: i128 = 25;

/// The exponents Kubernetes reads: its parser takes an `int64` and keeps an `int32` of it, so
/// beyond that range the API server would store another number than the one written (and
/// past `int64` refuses it); such quantities are refused here.
const EXPONENT_MAX: i128 = i32::MAX as i128;
const EXPONENT_MIN: i128 = i32::MIN as i128;

// Why a string is not a quantity: kept `&'static str` so errors are cheap to build.
const EMPTY: &str = "empty string";
const MISSING_NUMBER: &str = "missing number";
const UNKNOWN_SUFFIX: &str = "unknown suffix";
const INVALID_EXPONENT: &str = "invalid exponent";
const EXPONENT_RANGE: &str = "exponent out of range";

/// A Kubernetes resource quantity, as an exact number of milli-units.
///
/// Equality, ordering and hashing go by amount: `1`, `1000m` and `1e0` are the same quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    milli: i128,
}

/// A string that is not a Kubernetes quantity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError {
    /// The rejected text, verbatim.
    pub input: String,
    /// What is wrong with it, e.g. `unknown suffix`.
    pub reason: &'static str,
}

impl Quantity {
    pub const ZERO: Quantity = Quantity { milli: 0 };

    /// Parses a quantity string such as `100m`, `1.5Gi`, `129e6` or `-2`.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let error = |reason| QuantityError {
            input: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(error(EMPTY));
        }
        let parts = split(s);
        // Kubernetes' own scanner reads `.`, `+` and `-` alone as zero, but its published grammar
        // (and the API server's OpenAPI pattern) requires a digit, so we do too.
        if parts.int.is_empty() && parts.frac.is_empty() {
            return Err(error(MISSING_NUMBER));
        }
        let scale = suffix_scale(parts.suffix).map_err(error)?;
        let magnitude = magnitude_milli(parts.int, parts.frac, scale);
        Ok(Quantity {
            milli: if parts.negative {
                -magnitude
            } else {
                magnitude
            },
        })
    }

    /// The quantity of exactly `milli` milli-units (no cap applied).
    pub const fn from_milli(milli: i128) -> Quantity {
        Quantity { milli }
    }

    /// The quantity of exactly `units` whole units (no cap applied).
    pub const fn from_value(units: i64) -> Quantity {
        Quantity {
            milli: units as i128 * 1000,
        }
    }

    /// Exact milli-units, as stored.
    pub const fn milli(&self) -> i128 {
        self.milli
    }

    /// Kubernetes' `MilliValue()`: milli-units, saturated to the `i64` range.
    pub fn milli_value(&self) -> i64 {
        saturate_i64(self.milli)
    }

    /// Kubernetes' `Value()`: whole units, a fraction rounded away from zero (so `0.1` is 1 and
    /// `-0.1` is -1), saturated to the `i64` range.
    pub fn value(&self) -> i64 {
        let whole = self.milli / 1000;
        let rounded = if self.milli % 1000 == 0 {
            whole
        } else {
            whole + self.milli.signum()
        };
        saturate_i64(rounded)
    }

    pub const fn is_negative(&self) -> bool {
        self.milli < 0
    }

    pub const fn is_zero(&self) -> bool {
        self.milli == 0
    }

    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        self.milli
            .checked_add(other.milli)
            .map(Quantity::from_milli)
    }

    pub fn checked_sub(self, other: Quantity) -> Option<Quantity> {
        self.milli
            .checked_sub(other.milli)
            .map(Quantity::from_milli)
    }

    /// `units` whole units with Kubernetes' cap applied, as a parsed integer would be.
    fn from_units_capped(units: i128) -> Quantity {
        Quantity {
            milli: units.clamp(-MAX_UNITS, MAX_UNITS) * 1000,
        }
    }
}

fn saturate_i64(v: i128) -> i64 {
    // Lossless after the clamp.
    v.clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

/// A quantity string cut into its pieces; `int` and `frac` are ASCII digits (possibly empty).
struct Parts<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    suffix: &'a str,
}

fn split(s: &str) -> Parts<'_> {
    let bytes = s.as_bytes();
    let digits_from = |start: usize| {
        start
            + bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
    };
    let (negative, int_start) = match bytes.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let int_end = digits_from(int_start);
    let (frac, end) = if bytes.get(int_end) == Some(&b'.') {
        let frac_end = digits_from(int_end + 1);
        (&bytes[int_end + 1..frac_end], frac_end)
    } else {
        (&bytes[int_end..int_end], int_end)
    };
    // `end` follows ASCII bytes only, so it is a char boundary.
    Parts {
        negative,
        int: &bytes[int_start..int_end],
        frac,
        suffix: &s[end..],
    }
}

/// What a suffix multiplies the number by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scale {
    /// × 10^e
    Decimal(i128),
    /// × 2^shift
    Binary(u32),
}

fn suffix_scale(suffix: &str) -> Result<Scale, &'static str> {
    use Scale::{Binary, Decimal};
    Ok(match suffix {
        "" => Decimal(0),
        // `n` and `u` are not in Kubernetes' documented list but its parser accepts them.
        "n" => Decimal(-9),
        "u" => Decimal(-6),
        "m" => Decimal(-3),
        // Lower-case `k` only: `K` is not a Kubernetes suffix (only `Ki` is).
        "k" => Decimal(3),
        "M" => Decimal(6),
        "G" => Decimal(9),
        "T" => Decimal(12),
        "P" => Decimal(15),
        // Checked before exponents: a bare `E` is exa, `E3` is an exponent.
        "E" => Decimal(18),
        "Ki" => Binary(10),
        "Mi" => Binary(20),
        "Gi" => Binary(30),
        "Ti" => Binary(40),
        "Pi" => Binary(50),
        "Ei" => Binary(60),
        _ => return exponent_scale(suffix),
    })
}

/// A decimal exponent suffix: `e` or `E`, an optional sign, then at least one digit.
fn exponent_scale(suffix: &str) -> Result<Scale, &'static str> {
    let bytes = suffix.as_bytes();
    let rest = match bytes {
        [b'e' | b'E', rest @ ..] if !rest.is_empty() => rest,
        _ => return Err(UNKNOWN_SUFFIX),
    };
    let (negative, digits) = match rest {
        [b'-', digits @ ..] => (true, digits),
        [b'+', digits @ ..] => (false, digits),
        // `1Exa` is a made-up suffix rather than a broken exponent.
        [first, ..] if !first.is_ascii_digit() => return Err(UNKNOWN_SUFFIX),
        digits => (false, digits),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(INVALID_EXPONENT);
    }
    // Leading zeros are allowed (Go's ParseInt takes them); the fold stops growing once out of
    // range, so no digit count overflows it.
    let magnitude = digits.iter().fold(0i128, |e, d| {
        (e * 10 + i128::from(d - b'0')).min(EXPONENT_MAX + 2)
    });
    let exponent = if negative { -magnitude } else { magnitude };
    if !(EXPONENT_MIN..=EXPONENT_MAX).contains(&exponent) {
        return Err(EXPONENT_RANGE);
    }
    Ok(Scale::Decimal(exponent))
}

/// The digits of `<int>.<frac>` read as one integer, most significant first.
struct Digits<'a> {
    int: &'a [u8],
    frac: &'a [u8],
}

impl Digits<'_> {
    fn len(&self) -> usize {
        self.int.len() + self.frac.len()
    }

    fn get(&self, i: usize) -> u8 {
        let byte = if i < self.int.len() {
            self.int[i]
        } else {
            self.frac[i - self.int.len()]
        };
        byte - b'0'
    }
}

/// `ceil(|<int>.<frac>| × scale × 1000)`, capped at `MAX_MILLI`.
///
/// With D the digit string read as an integer, the answer is `ceil(D × 10^p × 2^shift)` where
/// `p = exponent + 3 − frac.len()`. The first `n + p` digits of D form the whole milli-units
/// (padded with zeros when `p > 0`), the rest the fraction, which only decides rounding and,
/// for binary suffixes, the carry that `× 2^shift` pushes into the whole part.
fn magnitude_milli(int: &[u8], frac: &[u8], scale: Scale) -> i128 {
    let (exponent, shift) = match scale {
        Scale::Decimal(e) => (e, 0),
        Scale::Binary(s) => (0, s),
    };
    let digits = Digits { int, frac };
    let n = digits.len();
    let Some(lead) = (0..n).find(|&i| digits.get(i) != 0) else {
        return 0; // zero stays zero whatever the suffix
    };
    let p = exponent + 3 - frac.len() as i128;
    // Index in D of the milli-unit point; may lie before D's start or past its end.
    let cut = n as i128 + p;
    if cut - lead as i128 > MAX_WHOLE_DIGITS {
        return MAX_MILLI;
    }

    // Whole milli-units, before the binary factor. Below MAX_WHOLE_DIGITS digits, so no overflow.
    let whole_end = cut.clamp(0, n as i128) as usize;
    let mut whole = (lead..whole_end).fold(0i128, |w, i| w * 10 + i128::from(digits.get(i)));
    if cut > n as i128 {
        whole *= 10i128.pow((cut - n as i128) as u32);
    }

    // The fraction × 2^shift, done digit by digit from the right like long multiplication:
    // the carry out of the leftmost fraction digit is what spills into the whole part, and any
    // non-zero digit left behind means the value was not a whole number of milli-units.
    // (When the milli-unit point lies before D's first digit there are implied zeros in between,
    // but that only happens with a negative decimal exponent, where the factor is 1 and there is
    // never a carry for them to pass on.)
    let factor = 1u128 << shift;
    let mut carry = 0u128;
    let mut inexact = false;
    for i in (whole_end..n).rev() {
        let t = u128::from(digits.get(i)) * factor + carry;
        inexact |= t % 10 != 0;
        carry = t / 10;
    }
    debug_assert!(carry == 0 || cut >= 0);

    // carry < 2^shift ≤ 2^60, so it converts losslessly.
    let carry = carry as i128;
    whole
        .checked_mul(1i128 << shift)
        .and_then(|w| w.checked_add(carry + i128::from(inexact)))
        .map_or(MAX_MILLI, |m| m.min(MAX_MILLI))
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse(s)
    }
}

/// Canonical text: whole units when exact (`2`, `-3`), milli-units otherwise (`1500m`). Parsing it
/// gives back the same quantity.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.milli % 1000 == 0 {
            write!(f, "{}", self.milli / 1000)
        } else {
            write!(f, "{}m", self.milli)
        }
    }
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid quantity {:?} ({}", self.input, self.reason)?;
        if [UNKNOWN_SUFFIX, INVALID_EXPONENT, EXPONENT_RANGE].contains(&self.reason) {
            // Name the offending suffix (`unknown suffix "x"`); it is recovered from the input
            // rather than stored so that `reason` can stay a `&'static str`.
            write!(f, " {:?}", split(&self.input).suffix)?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for QuantityError {}

// Sums of quantities saturate rather than wrap or panic; with i128 milli-units that takes far
// more than any cluster holds.

impl Add for Quantity {
    type Output = Quantity;

    fn add(self, other: Quantity) -> Quantity {
        Quantity {
            milli: self.milli.saturating_add(other.milli),
        }
    }
}

impl Sub for Quantity {
    type Output = Quantity;

    fn sub(self, other: Quantity) -> Quantity {
        Quantity {
            milli: self.milli.saturating_sub(other.milli),
        }
    }
}

impl Neg for Quantity {
    type Output = Quantity;

    fn neg(self) -> Quantity {
        Quantity {
            milli: self.milli.saturating_neg(),
        }
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, other: Quantity) {
        *self = *self + other;
    }
}

impl SubAssign for Quantity {
    fn sub_assign(&mut self, other: Quantity) {
        *self = *self - other;
    }
}

impl Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Quantity> for Quantity {
    fn sum<I: Iterator<Item = &'a Quantity>>(iter: I) -> Quantity {
        iter.copied().sum()
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Accepts a JSON string, or a bare JSON number as Kubernetes' `UnmarshalJSON` does.
impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Quantity, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes quantity (a string such as \"100m\" or \"1Gi\", or a number)")
    }

    // Borrowed (`visit_borrowed_str`) and owned (`visit_string`) strings both land here.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
        Quantity::parse(v).map_err(E::custom)
    }

    // Integers are read exactly; like parsed text, they are capped at 2^63 − 1 units.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
        Ok(Quantity::from_units_capped(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
        Ok(Quantity::from_units_capped(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Quantity, E> {
        Ok(Quantity::from_units_capped(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Quantity, E> {
        Ok(Quantity::from_units_capped(
            i128::try_from(v).unwrap_or(i128::MAX),
        ))
    }

    // Kubernetes parses the number's JSON text; the closest we have is the f64's shortest
    // round-trip decimal text (`0.1` stays `0.1`, not 0.1000000000000000055...).
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
        Quantity::parse(&v.to_string()).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn milli(s: &str) -> i128 {
        q(s).milli()
    }

    fn units(s: &str) -> i128 {
        let m = milli(s);
        assert_eq!(m % 1000, 0, "{s:?} is not a whole number of units: {m}m");
        m / 1000
    }

    fn reason(s: &str) -> &'static str {
        match Quantity::parse(s) {
            Ok(v) => panic!("{s:?} should be rejected, parsed as {v}"),
            Err(e) => {
                assert_eq!(e.input, s);
                e.reason
            }
        }
    }

    const CAP: i128 = i64::MAX as i128;

    #[test]
    fn documented_memory_examples() {
        // "Meaning of memory": roughly the same value, written five ways.
        assert_eq!(units("128974848"), 128_974_848);
        assert_eq!(units("129e6"), 129_000_000);
        assert_eq!(units("129M"), 129_000_000);
        assert_eq!(units("128974848000m"), 128_974_848);
        assert_eq!(units("123Mi"), 128_974_848);
        assert_eq!(q("123Mi"), q("128974848"));
        assert_eq!(q("128974848000m"), q("128974848"));
        assert_eq!(q("129e6"), q("129M"));
        assert_eq!(units("1.5Gi"), 1_610_612_736);
    }

    #[test]
    fn documented_cpu_examples() {
        assert_eq!(milli("0.1"), 100);
        assert_eq!(milli("100m"), 100);
        assert_eq!(q("0.1"), q("100m"));
        assert_eq!(milli("0.5"), 500);
        assert_eq!(milli("1"), 1000);
        assert_eq!(milli("1.5"), 1500);
        assert_eq!(milli("250m"), 250);
    }

    #[test]
    fn number_forms() {
        assert_eq!(milli(".5"), 500);
        assert_eq!(milli("5."), 5000);
        assert_eq!(milli("+1"), 1000);
        assert_eq!(milli("-1"), -1000);
        assert_eq!(milli("0"), 0);
        assert_eq!(milli("-0"), 0);
        assert_eq!(milli("+0.000"), 0);
        assert_eq!(milli("007"), 7000);
        assert_eq!(milli("1.G"), 1_000_000_000_000);
        assert_eq!(milli(".5Ki"), 512_000);
        assert_eq!(milli("-.5"), -500);
        assert_eq!(milli("0.0"), 0);
    }

    #[test]
    fn negative_zero_is_not_negative() {
        assert!(!q("-0").is_negative());
        assert!(!q("-0.0Ki").is_negative());
        assert!(!q("-0e99").is_negative());
        assert_eq!(q("-0"), Quantity::ZERO);
        assert!(q("-1m").is_negative());
        assert!(!q("1m").is_negative());
    }

    #[test]
    fn decimal_si_suffixes() {
        assert_eq!(milli("1n"), 1); // 10^-9 rounds up to one milli-unit
        assert_eq!(milli("1u"), 1);
        assert_eq!(milli("1m"), 1);
        assert_eq!(milli("1000000n"), 1);
        assert_eq!(milli("1000001n"), 2);
        assert_eq!(units("1k"), 1_000);
        assert_eq!(units("1M"), 1_000_000);
        assert_eq!(units("1G"), 1_000_000_000);
        assert_eq!(units("1T"), 1_000_000_000_000);
        assert_eq!(units("1P"), 1_000_000_000_000_000);
        assert_eq!(units("1E"), 1_000_000_000_000_000_000);
        assert_eq!(units("9E"), 9_000_000_000_000_000_000);
    }

    #[test]
    fn binary_si_suffixes() {
        assert_eq!(units("1Ki"), 1024);
        assert_eq!(units("1Mi"), 1 << 20);
        assert_eq!(units("1Gi"), 1 << 30);
        assert_eq!(units("1Ti"), 1 << 40);
        assert_eq!(units("1Pi"), 1 << 50);
        assert_eq!(units("1Ei"), 1 << 60);
        assert_eq!(units("7Ei"), 7 << 60);
        assert_eq!(units("0.5Gi"), 1 << 29);
        assert_eq!(units("-2Ki"), -2048);
    }

    #[test]
    fn binary_fractions_round_up() {
        assert_eq!(milli("0.1Ki"), 102_400); // 102.4
        assert_eq!(milli("1.1Ki"), 1_126_400); // 1126.4
        assert_eq!(milli("0.0001Ki"), 103); // 0.1024 → 102.4m → 103m
        assert_eq!(milli("1.0001Ki"), 1_024_103); // 1024.1024 → 1024102.4m
        assert_eq!(milli("0.000001Ki"), 2); // 1.024m
                                            // 2^60 × 10^-9 = 1152921504.606846976
        assert_eq!(milli("0.000000001Ei"), 1_152_921_504_607);
        assert_eq!(milli("-0.0001Ki"), -103);
        assert_eq!(q("0.001Ki").milli(), 1024);
    }

    #[test]
    fn capped_at_max_int64_units() {
        assert_eq!(units("8Ei"), CAP);
        assert_eq!(units("10E"), CAP);
        assert_eq!(units("-10E"), -CAP);
        assert_eq!(units("9223372036854775807"), CAP);
        assert_eq!(units("9223372036854775808"), CAP);
        assert_eq!(milli("9223372036854775806.5"), CAP * 1000 - 500);
        assert_eq!(milli("9223372036854775807.0001"), CAP * 1000);
        assert_eq!(units("1e19"), CAP);
        assert_eq!(units("16Ei"), CAP);
        assert_eq!(units("99999999999999999999999999999999999999999999Ei"), CAP);
        assert_eq!(q("8Ei").value(), i64::MAX);
        assert_eq!(q("-8Ei").value(), -i64::MAX);
        assert_eq!(q("8Ei").milli_value(), i64::MAX);
        assert_eq!(q("-8Ei").milli_value(), i64::MIN);
    }

    #[test]
    fn decimal_exponents() {
        assert_eq!(units("1e3"), 1000);
        assert_eq!(units("1E3"), 1000);
        assert_eq!(units("1E+3"), 1000);
        assert_eq!(units("1e+3"), 1000);
        assert_eq!(milli("1e-3"), 1);
        assert_eq!(milli("1E-3"), 1);
        assert_eq!(units("2.5e2"), 250);
        assert_eq!(milli("2.5e-2"), 25);
        assert_eq!(milli("1e-4"), 1);
        assert_eq!(milli("15e-4"), 2);
        assert_eq!(units("1e0"), 1);
        assert_eq!(units("1e007"), 10_000_000);
        assert_eq!(units("-1.5e1"), -15);
        assert_eq!(units("0e5"), 0);
        assert_eq!(units("1e18"), 1_000_000_000_000_000_000);
    }

    #[test]
    fn exponents_as_far_as_kubernetes_reads_them() {
        // Kubernetes keeps an int32 exponent: to its bounds they parse, and saturate or round.
        assert_eq!(units("1e1000"), CAP);
        assert_eq!(units("1e2147483647"), CAP);
        assert_eq!(milli("1e-1000"), 1);
        assert_eq!(milli("1e-2147483648"), 1);
        assert_eq!(milli("-1e-2147483648"), -1);
        assert_eq!(milli("0e2147483647"), 0);
        assert_eq!(units("1e0000000000000000000000000003"), 1000);
        // One past them, and far past (where Go's ParseInt fails), they are refused.
        for s in [
            "1e2147483648",
            "1e-2147483649",
            "0e99999999999999999999999999999999999999999999999999",
            "1e-99999999999999999999999999999999999999999999999999",
        ] {
            assert_eq!(reason(s), EXPONENT_RANGE, "{s:?}");
        }
        assert_eq!(
            Quantity::parse("1e2147483648").unwrap_err().to_string(),
            "invalid quantity \"1e2147483648\" (exponent out of range \"e2147483648\")"
        );
        // A long fraction pulled back by a big exponent still lands exactly.
        let s = format!("0.{}1e{}", "0".repeat(2000), 2001);
        assert_eq!(units(&s), 1);
    }

    #[test]
    fn long_digit_strings() {
        let zeros = "0".repeat(10_000);
        assert_eq!(units(&format!("1{zeros}")), CAP);
        assert_eq!(units(&format!("{zeros}1")), 1);
        assert_eq!(units(&format!("{zeros}1.{zeros}")), 1);
        assert_eq!(milli(&format!("0.{zeros}1")), 1);
        assert_eq!(milli(&format!("0.001{zeros}")), 1);
        assert_eq!(milli(&format!("0.001{zeros}1")), 2);
        assert_eq!(milli(&format!("-0.001{zeros}1")), -2);
        assert_eq!(milli(&format!("1.{zeros}1Ki")), 1_024_001);
        assert_eq!(milli(&format!("0.{zeros}")), 0);
        assert_eq!(units(&format!("{}e-27", "9".repeat(30))), 1000);
        assert_eq!(milli(&format!("{}e-27", "9".repeat(30))), 1_000_000);
        assert_eq!(milli("123456789012345678901234567890e-30"), 124);
        assert_eq!(units(&"9".repeat(100_000)), CAP);
        assert_eq!(milli(&format!("0.{}", "9".repeat(100_000))), 1000);
    }

    #[test]
    fn boundaries_of_exact_digits() {
        // Just below and above the point where whole digits stop being computed.
        assert_eq!(units("9223372036854775"), 9_223_372_036_854_775);
        assert_eq!(milli("9223372036854775807999m"), CAP * 1000);
        assert_eq!(milli("9223372036854775806999m"), CAP * 1000 - 1);
        assert_eq!(milli("1000000000000000000000000m"), CAP * 1000);
        assert_eq!(milli("9999999999999999999999999m"), CAP * 1000);
        assert_eq!(milli("99999999999999999999999999m"), CAP * 1000);
        assert_eq!(milli("9999999999999999999Ki"), CAP * 1000);
    }

    #[test]
    fn error_reasons() {
        assert_eq!(reason(""), EMPTY);
        for s in [
            ".", "-", "+", "+.", "-.", "Ki", "ki", "k", "m", "e3", "E", " 1", "\t1", "--1",
        ] {
            assert_eq!(reason(s), MISSING_NUMBER, "{s:?}");
        }
        for s in [
            "12x", "1K", "1Kb", "1 ", "1 Ki", "1.2.3", "0x10", "1_000", "1e", "1ki", "1mi", "1KI",
            "1kB", "1Mb", "1Exa", "1i", "1.5.", "1,5", "1..", "1 1", "1\n", "1EE", "1em",
        ] {
            assert_eq!(reason(s), UNKNOWN_SUFFIX, "{s:?}");
        }
        for s in [
            "1e+", "1e-", "1E+", "1e3.5", "1e-3x", "1e+-3", "1e3 ", "1e1_000",
        ] {
            assert_eq!(reason(s), INVALID_EXPONENT, "{s:?}");
        }
    }

    #[test]
    fn rejects_non_ascii() {
        // Arabic-Indic and full-width digits, a non-breaking space, a multiplication sign.
        for s in [
            "١",
            "１",
            "1\u{a0}",
            "\u{a0}1",
            "1×",
            "1Ki\u{301}",
            "½",
            "1\u{2212}3",
        ] {
            assert!(Quantity::parse(s).is_err(), "{s:?}");
        }
        assert_eq!(reason("1١"), UNKNOWN_SUFFIX);
    }

    #[test]
    fn error_display() {
        let e = Quantity::parse("12x").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid quantity "12x" (unknown suffix "x")"#
        );
        assert_eq!(e.reason, "unknown suffix");
        assert_eq!(
            Quantity::parse("").unwrap_err().to_string(),
            r#"invalid quantity "" (empty string)"#
        );
        assert_eq!(
            Quantity::parse("Ki").unwrap_err().to_string(),
            r#"invalid quantity "Ki" (missing number)"#
        );
        assert_eq!(
            Quantity::parse("1e+").unwrap_err().to_string(),
            r#"invalid quantity "1e+" (invalid exponent "e+")"#
        );
        assert_eq!(
            Quantity::parse("1 Ki").unwrap_err().to_string(),
            r#"invalid quantity "1 Ki" (unknown suffix " Ki")"#
        );
        assert_eq!(
            Quantity::parse("1.2.3").unwrap_err().to_string(),
            r#"invalid quantity "1.2.3" (unknown suffix ".3")"#
        );
        let e: Box<dyn std::error::Error> = Box::new(Quantity::parse("1Kb").unwrap_err());
        assert_eq!(
            e.to_string(),
            r#"invalid quantity "1Kb" (unknown suffix "Kb")"#
        );
    }

    #[test]
    fn from_str_matches_parse() {
        assert_eq!("1.5Gi".parse::<Quantity>(), Quantity::parse("1.5Gi"));
        assert_eq!("nope".parse::<Quantity>(), Quantity::parse("nope"));
        assert_eq!(
            "250m".parse::<Quantity>().unwrap(),
            Quantity::from_milli(250)
        );
    }

    #[test]
    fn value_rounds_away_from_zero() {
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("0.1").value(), 1);
        assert_eq!(q("-0.1").value(), -1);
        assert_eq!(q("1n").value(), 1);
        assert_eq!(q("-1n").value(), -1);
        assert_eq!(q("2").value(), 2);
        assert_eq!(q("-2").value(), -2);
        assert_eq!(q("0").value(), 0);
        assert_eq!(q("1999m").value(), 2);
        assert_eq!(q("2001m").value(), 3);
        assert_eq!(q("1.5Gi").value(), 1_610_612_736);
        assert_eq!(Quantity::from_milli(i128::MAX).value(), i64::MAX);
        assert_eq!(Quantity::from_milli(i128::MIN).value(), i64::MIN);
    }

    #[test]
    fn milli_value_rounds_up_and_saturates() {
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("-1n").milli_value(), -1);
        assert_eq!(q("1500u").milli_value(), 2);
        assert_eq!(q("0.0001").milli_value(), 1);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("-2").milli_value(), -2000);
        // MaxMilliValue in Kubernetes: the largest count of units whose milli-value fits an i64.
        let max_exact = i64::MAX / 1000;
        assert_eq!(
            Quantity::from_value(max_exact).milli_value(),
            max_exact * 1000
        );
        assert_eq!(Quantity::from_value(max_exact + 1).milli_value(), i64::MAX);
        assert_eq!(q("1Ei").milli_value(), i64::MAX);
        assert_eq!(q("-1Ei").milli_value(), i64::MIN);
        assert_eq!(q("1Ei").value(), 1 << 60);
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(q("2").to_string(), "2");
        assert_eq!(q("2000m").to_string(), "2");
        assert_eq!(q("1.5").to_string(), "1500m");
        assert_eq!(q("-1.5").to_string(), "-1500m");
        assert_eq!(q("-3").to_string(), "-3");
        assert_eq!(q("0").to_string(), "0");
        assert_eq!(q("-0").to_string(), "0");
        assert_eq!(q("1n").to_string(), "1m");
        assert_eq!(q("1Ki").to_string(), "1024");
        assert_eq!(q("0.1Ki").to_string(), "102400m");
        assert_eq!(q("1.5Gi").to_string(), "1610612736");
        assert_eq!(q("8Ei").to_string(), "9223372036854775807");
        assert_eq!(q("1e3").to_string(), "1000");
    }

    #[test]
    fn constructors_and_accessors() {
        assert_eq!(Quantity::from_milli(1500).milli(), 1500);
        assert_eq!(Quantity::from_value(3).milli(), 3000);
        assert_eq!(Quantity::from_value(-3), q("-3"));
        assert_eq!(Quantity::default(), Quantity::ZERO);
        assert!(Quantity::ZERO.is_zero());
        assert!(!q("1n").is_zero());
        assert!(Quantity::from_milli(-1).is_negative());
    }

    #[test]
    fn ordering_compares_amounts() {
        assert!(q("999m") < q("1"));
        assert!(q("1Ki") > q("1k"));
        assert!(q("-1") < q("0"));
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1k").cmp(&q("1000")), std::cmp::Ordering::Equal);
        let mut v = vec![q("1Gi"), q("-1"), q("100m"), q("1G")];
        v.sort();
        assert_eq!(v, vec![q("-1"), q("100m"), q("1G"), q("1Gi")]);
    }

    #[test]
    fn arithmetic() {
        assert_eq!(q("1.5") + q("500m"), q("2"));
        assert_eq!(q("1") - q("1500m"), q("-500m"));
        assert_eq!(-q("1"), q("-1"));
        let mut a = q("1Ki");
        a += q("1Ki");
        assert_eq!(a, q("2Ki"));
        a -= q("2Ki");
        assert_eq!(a, Quantity::ZERO);
        assert_eq!([q("1"), q("2"), q("3")].iter().sum::<Quantity>(), q("6"));
        assert_eq!(vec![q("100m"); 10].into_iter().sum::<Quantity>(), q("1"));
        let max = Quantity::from_milli(i128::MAX);
        assert_eq!(max + q("1"), max);
        assert_eq!(max.checked_add(q("1")), None);
        assert_eq!(Quantity::from_milli(i128::MIN).checked_sub(q("1")), None);
        assert_eq!(q("1").checked_sub(q("2")), Some(q("-1")));
        assert_eq!(-Quantity::from_milli(i128::MIN), max);
    }

    #[test]
    fn serde_from_json_strings() {
        let v: Quantity = serde_json::from_str(r#""100m""#).unwrap();
        assert_eq!(v, q("100m"));
        let v: Quantity = serde_json::from_str(r#""1.5Gi""#).unwrap();
        assert_eq!(v.value(), 1_610_612_736);
        // An escaped string cannot be borrowed, so it reaches the visitor as an owned String.
        let v: Quantity = serde_json::from_str(r#""1\u004bi""#).unwrap();
        assert_eq!(v, q("1Ki"));
        // From a serde_json::Value, the string is owned too.
        let v: Quantity = serde_json::from_value(serde_json::json!("2Mi")).unwrap();
        assert_eq!(v, q("2Mi"));
        // Borrowed from a reader-less slice.
        let v: Quantity = serde_json::from_slice(b"\"250m\"").unwrap();
        assert_eq!(v.milli(), 250);
    }

    #[test]
    fn serde_from_json_numbers() {
        let num = |s: &str| serde_json::from_str::<Quantity>(s).unwrap();
        assert_eq!(num("1"), q("1"));
        assert_eq!(num("1.5"), q("1500m"));
        assert_eq!(num("2e3"), q("2000"));
        assert_eq!(num("2E3"), q("2000"));
        assert_eq!(num("0.1"), q("100m"));
        assert_eq!(num("-1"), q("-1"));
        assert_eq!(num("-0.5"), q("-500m"));
        assert_eq!(num("0"), Quantity::ZERO);
        assert_eq!(num("-0.0"), Quantity::ZERO);
        assert_eq!(num("1e-9"), q("1m")); // rounds up
        assert_eq!(num("0.30000000000000004"), q("301m")); // as Kubernetes rounds it up
        assert_eq!(num("9223372036854775807"), q("9223372036854775807"));
        assert_eq!(num("18446744073709551615"), q("8Ei")); // u64::MAX, capped
        assert_eq!(num("-9223372036854775808"), q("-8Ei")); // i64::MIN, capped
        assert_eq!(num("1e300"), q("8Ei"));
        assert_eq!(num("123456789012345678901234567890"), q("8Ei"));
        assert_eq!(
            serde_json::from_value::<Quantity>(serde_json::json!(1.5)).unwrap(),
            q("1.5")
        );
        assert_eq!(
            serde_json::from_value::<Quantity>(serde_json::json!(7)).unwrap(),
            q("7")
        );
        assert_eq!(
            serde_json::from_value::<Quantity>(serde_json::json!(-7)).unwrap(),
            q("-7")
        );
    }

    #[test]
    fn serde_visitor_integer_widths() {
        use serde::de::value::Error;
        let visit = QuantityVisitor;
        assert_eq!(visit.visit_i128::<Error>(-5).unwrap(), q("-5"));
        assert_eq!(
            QuantityVisitor.visit_i128::<Error>(i128::MIN).unwrap(),
            q("-8Ei")
        );
        assert_eq!(
            QuantityVisitor.visit_u128::<Error>(u128::MAX).unwrap(),
            q("8Ei")
        );
        assert_eq!(QuantityVisitor.visit_u128::<Error>(12).unwrap(), q("12"));
        assert!(QuantityVisitor.visit_f64::<Error>(f64::NAN).is_err());
        assert!(QuantityVisitor.visit_f64::<Error>(f64::INFINITY).is_err());
        assert_eq!(
            QuantityVisitor.visit_f64::<Error>(f64::MAX).unwrap(),
            q("8Ei")
        );
        assert_eq!(
            QuantityVisitor
                .visit_f64::<Error>(f64::MIN_POSITIVE)
                .unwrap(),
            q("1m")
        );
        assert_eq!(QuantityVisitor.visit_f64::<Error>(5e-324).unwrap(), q("1m"));
    }

    #[test]
    fn serde_errors() {
        let err = serde_json::from_str::<Quantity>(r#""12x""#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(r#"invalid quantity "12x" (unknown suffix "x")"#),
            "{err}"
        );
        let err = serde_json::from_str::<Quantity>("true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Kubernetes quantity"), "{err}");
        assert!(serde_json::from_str::<Quantity>("null").is_err());
        assert!(serde_json::from_str::<Quantity>("[]").is_err());
        assert!(serde_json::from_str::<Quantity>(r#""""#).is_err());
        // Option handles null the usual way.
        assert_eq!(
            serde_json::from_str::<Option<Quantity>>("null").unwrap(),
            None
        );
    }

    #[test]
    fn serde_round_trips() {
        for s in [
            "0", "1", "-1", "100m", "1.5", "1Gi", "1.5Gi", "1n", "8Ei", "-0.1Ki", "2.5e2",
        ] {
            let v = q(s);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{v}\""));
            assert_eq!(serde_json::from_str::<Quantity>(&json).unwrap(), v, "{s}");
        }
        assert_eq!(serde_json::to_string(&q("1.5")).unwrap(), r#""1500m""#);
        assert_eq!(
            serde_json::to_value(q("1Ki")).unwrap(),
            serde_json::json!("1024")
        );

        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Requests {
            cpu: Quantity,
            memory: Quantity,
        }
        let r: Requests = serde_json::from_str(r#"{"cpu": 0.5, "memory": "1Gi"}"#).unwrap();
        assert_eq!(
            r,
            Requests {
                cpu: q("500m"),
                memory: q("1Gi")
            }
        );
        let back: Requests = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    /// An independent, simpler computation for small inputs: an exact fraction in u128.
    fn reference_milli(int: &str, frac: &str, suffix: &str) -> Option<i128> {
        let digits: u128 = format!("0{int}{frac}").parse().ok()?;
        let mut num = digits.checked_mul(1000)?;
        let mut den = 10u128.checked_pow(frac.len() as u32)?;
        let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        let decimal = [("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6)];
        let decimal_more = [("G", 9), ("T", 12), ("P", 15), ("E", 18)];
        if let Some(i) = binary.iter().position(|b| *b == suffix) {
            num = num.checked_mul(1u128 << (10 * (i + 1)))?;
        } else {
            let exp: i32 = match decimal
                .iter()
                .chain(&decimal_more)
                .find(|(s, _)| *s == suffix)
            {
                Some(&(_, e)) => e,
                None => suffix[1..].parse().ok()?,
            };
            if exp >= 0 {
                num = num.checked_mul(10u128.checked_pow(exp as u32)?)?;
            } else {
                den = den.checked_mul(10u128.checked_pow(exp.unsigned_abs())?)?;
            }
        }
        let ceil = num / den + u128::from(num % den != 0);
        Some(i128::try_from(ceil).ok()?.min(CAP * 1000))
    }

    fn suffix_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi",
                "Ei",
            ])
            .prop_map(str::to_owned),
            (
                prop::sample::select(vec!["e", "E"]),
                prop::sample::select(vec!["", "+", "-"]),
                0..40u32
            )
                .prop_map(|(e, sign, n)| format!("{e}{sign}{n}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_on_arbitrary_strings(s in any::<String>()) {
            let _ = Quantity::parse(&s);
        }

        #[test]
        fn never_panics_on_quantity_like_strings(s in "[-+]?[0-9.]{0,30}[-+0-9.eEKMGTPEimnuk x]{0,8}") {
            if let Ok(v) = Quantity::parse(&s) {
                // Whatever parses, round-trips through its canonical text.
                prop_assert_eq!(Quantity::parse(&v.to_string()), Ok(v));
                prop_assert!(v.milli().abs() <= CAP * 1000);
            }
        }

        #[test]
        fn matches_reference(
            neg in any::<bool>(),
            int in "[0-9]{0,12}",
            frac in "[0-9]{0,12}",
            dot in any::<bool>(),
            suffix in suffix_strategy(),
        ) {
            // A number needs a digit somewhere.
            let int = if int.is_empty() && frac.is_empty() { "0".to_owned() } else { int };
            let text = format!(
                "{}{int}{}{frac}{suffix}",
                if neg { "-" } else { "" },
                if dot || !frac.is_empty() { "." } else { "" },
            );
            let parsed = Quantity::parse(&text).unwrap();
            if let Some(expected) = reference_milli(&int, &frac, &suffix) {
                let expected = if neg { -expected } else { expected };
                prop_assert_eq!(parsed.milli(), expected, "{}", text);
            }
        }

        #[test]
        fn display_round_trips(m in any::<i64>()) {
            let v = Quantity::from_milli(i128::from(m));
            prop_assert_eq!(Quantity::parse(&v.to_string()), Ok(v));
        }

        #[test]
        fn value_is_ceiling_of_milli(m in -(1i64 << 52)..(1i64 << 52)) {
            // Within ±2^52 the float computation below is exact.
            let v = Quantity::from_milli(i128::from(m));
            let expected = (m as f64 / 1000.0).abs().ceil() as i128 * i128::from(m.signum());
            prop_assert_eq!(i128::from(v.value()), expected);
            prop_assert_eq!(v.milli_value(), m);
        }

        #[test]
        fn exponent_equals_moved_point(digits in "[1-9][0-9]{0,15}", e in -20i32..20) {
            // `D e<e>` and the same digits with the point moved by hand are the same quantity.
            let shift = e.unsigned_abs() as usize;
            let moved = if e >= 0 {
                format!("{digits}{}", "0".repeat(shift))
            } else if shift < digits.len() {
                let (whole, frac) = digits.split_at(digits.len() - shift);
                format!("{whole}.{frac}")
            } else {
                format!(".{}{digits}", "0".repeat(shift - digits.len()))
            };
            prop_assert_eq!(q(&format!("{digits}e{e}")), q(&moved));
        }

        #[test]
        fn json_numbers_match_strings(x in -1.0e12f64..1.0e12) {
            let json = serde_json::to_string(&x).unwrap();
            let from_number: Quantity = serde_json::from_str(&json).unwrap();
            // Compare with the f64 serde_json hands over: without its `float_roundtrip` feature
            // its float parsing can be one ulp off `x`.
            let delivered: f64 = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(from_number, q(&delivered.to_string()));
        }
    }
}
