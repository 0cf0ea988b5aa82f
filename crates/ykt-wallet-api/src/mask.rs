//! Card numbers as other apps see them (client.md §6.7; the shape is L until JR/T 0171 Annex A
//! is seen): 12 digits or more → first 6, `*` for each middle digit, last 4; fewer → `*` and
//! the last 4. The wallet's full masking module covers the other classes; this crate only ever
//! shows card numbers.

use std::fmt;

/// The number of leading digits shown of a long card number.
const HEAD: usize = 6;
/// The number of trailing digits shown.
const TAIL: usize = 4;
/// From this many characters on, the head is shown too.
const LONG: usize = 12;

/// `number` masked (client.md §6.7). Works on characters, so non-digit input is masked the
/// same way; four characters or fewer are masked whole.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    if n >= LONG {
        let mut out: String = chars[..HEAD].iter().collect();
        out.extend(std::iter::repeat_n('*', n - HEAD - TAIL));
        out.extend(&chars[n - TAIL..]);
        out
    } else if n > TAIL {
        let mut out = String::from("*");
        out.extend(&chars[n - TAIL..]);
        out
    } else {
        "*".repeat(n)
    }
}

/// A full card number, as the wallet holds it. `Debug` and `Display` print it masked, and it
/// has no `Serialize`: only [`CardNumber::masked`] reaches a response.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardNumber(String);

impl CardNumber {
    /// The number.
    pub fn new(number: impl Into<String>) -> Self {
        Self(number.into())
    }

    /// The masked form (client.md §6.7).
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_client_md_6_7() {
        for (number, shown) in [
            ("3100123456789012", "310012******9012"),
            ("310012345678", "310012**5678"),
            ("31001234567", "*4567"),
            ("12345", "*2345"),
            ("1234", "****"),
            ("", ""),
            ("3100123456789012345", "310012*********2345"),
        ] {
            assert_eq!(mask(number), shown, "{number}");
        }
    }

    #[test]
    fn no_more_than_four_middle_digits_survive() {
        // For every length, no window of 5 digits of the input's middle is in the output.
        let digits = "31001234567890123456789";
        for n in 0..=digits.len() {
            let input = &digits[..n];
            let out = mask(input);
            if n > HEAD + TAIL {
                for start in HEAD..n - TAIL {
                    let end = (start + 5).min(n);
                    if end - start == 5 {
                        assert!(!out.contains(&input[start..end]), "{input} → {out}");
                    }
                }
            }
            assert!(!out.contains(input) || n == 0, "{input} → {out}");
        }
    }

    #[test]
    fn debug_and_display_are_masked() {
        let number = CardNumber::new("3100123456789012");
        assert_eq!(format!("{number}"), "310012******9012");
        assert_eq!(format!("{number:?}"), "CardNumber(310012******9012)");
    }
}
