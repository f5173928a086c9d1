//! Money: integer euro cents, never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in euro cents. Every operation is checked: an overflow is an error the
/// caller must handle, never a wrapped balance.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Cents(i64);

/// Arithmetic on [`Cents`] left the range of `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("amount out of range")]
pub struct CentsOverflow;

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub const fn new(cents: i64) -> Cents {
        Cents(cents)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Cents) -> Result<Cents, CentsOverflow> {
        self.0.checked_add(other.0).map(Cents).ok_or(CentsOverflow)
    }

    pub fn checked_sub(self, other: Cents) -> Result<Cents, CentsOverflow> {
        self.0.checked_sub(other.0).map(Cents).ok_or(CentsOverflow)
    }

    pub fn checked_neg(self) -> Result<Cents, CentsOverflow> {
        self.0.checked_neg().map(Cents).ok_or(CentsOverflow)
    }

    pub fn checked_mul(self, count: u32) -> Result<Cents, CentsOverflow> {
        self.0
            .checked_mul(i64::from(count))
            .map(Cents)
            .ok_or(CentsOverflow)
    }

    /// The sum of `amounts`, or an error if any partial sum overflows.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Cents>) -> Result<Cents, CentsOverflow> {
        amounts
            .into_iter()
            .try_fold(Cents::ZERO, |total, amount| total.checked_add(amount))
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The amount as French readers expect it: `12,40 €`, `-0,05 €`, `1 234,00 €` (thin space
    /// between thousands).
    pub fn to_french(self) -> String {
        format!("{} €", FrenchDecimal(self))
    }
}

/// Formats cents as `1 234,56` (narrow no-break space between thousands, comma for decimals).
struct FrenchDecimal(Cents);

impl fmt::Display for FrenchDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = self.0.0;
        let sign = if cents < 0 { "-" } else { "" };
        let magnitude = cents.unsigned_abs();
        let euros = (magnitude / 100).to_string();
        let mut grouped = String::with_capacity(euros.len() * 2);
        for (index, digit) in euros.chars().enumerate() {
            if index > 0 && (euros.len() - index).is_multiple_of(3) {
                grouped.push('\u{202f}');
            }
            grouped.push(digit);
        }
        write!(f, "{sign}{grouped},{:02}", magnitude % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_format() {
        fn check(cents: i64, expected: &str) {
            assert_eq!(Cents::new(cents).to_french(), expected, "{cents}");
        }
        check(0, "0,00 €");
        check(5, "0,05 €");
        check(-5, "-0,05 €");
        check(1240, "12,40 €");
        check(123_456, "1\u{202f}234,56 €");
        check(-100_000_000, "-1\u{202f}000\u{202f}000,00 €");
        check(
            i64::MIN,
            "-92\u{202f}233\u{202f}720\u{202f}368\u{202f}547\u{202f}758,08 €",
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Cents::new(i64::MAX);
        assert_eq!(max.checked_add(Cents::new(1)), Err(CentsOverflow));
        assert_eq!(
            Cents::new(i64::MIN).checked_sub(Cents::new(1)),
            Err(CentsOverflow)
        );
        assert_eq!(Cents::new(i64::MIN).checked_neg(), Err(CentsOverflow));
        assert_eq!(max.checked_mul(2), Err(CentsOverflow));
        assert_eq!(Cents::new(350).checked_mul(3), Ok(Cents::new(1050)));
        assert_eq!(
            Cents::checked_sum([Cents::new(1), Cents::new(-3), Cents::new(7)]),
            Ok(Cents::new(5))
        );
        assert_eq!(Cents::checked_sum([max, Cents::new(1)]), Err(CentsOverflow));
    }

    #[test]
    fn json_is_a_plain_integer() {
        assert_eq!(serde_json::to_string(&Cents::new(-250)).unwrap(), "-250");
        assert_eq!(
            serde_json::from_str::<Cents>("1240").unwrap(),
            Cents::new(1240)
        );
        assert!(serde_json::from_str::<Cents>("12.40").is_err());
        assert!(serde_json::from_str::<Cents>("\"1240\"").is_err());
        assert!(serde_json::from_str::<Cents>("9223372036854775808").is_err());
    }
}
