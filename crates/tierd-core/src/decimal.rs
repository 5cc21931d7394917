//! Fixed-point text for scores, coverage and impacts, written without `core::fmt`.
//!
//! Formatting floats through `format!("{:.3}")` costs more than scoring an account, and
//! tierd writes several per account. An `f32` times 10^d (d <= 6) is exact in `f64`, so
//! rounding that product half-to-even gives the same digits `{:.d}` prints: outputs stay
//! byte-identical to the standard formatter (a test checks this over many values).

use std::sync::OnceLock;

/// Appends `x` with `decimals` digits after the point (at most 6), `+` before positive values
/// when `plus` is set. Non-finite values fall back to the standard formatter.
#[inline]
pub fn push_fixed(out: &mut String, x: f32, decimals: u32, plus: bool) {
    assert!(decimals <= 6, "push_fixed supports up to 6 decimals");
    let scale = 10u64.pow(decimals);
    let scaled = round_half_even(f64::from(x).abs() * scale as f64);
    if !x.is_finite() || scaled >= 1e15 {
        use std::fmt::Write as _;
        let _ = match plus {
            true => write!(out, "{x:+.*}", decimals as usize),
            false => write!(out, "{x:.*}", decimals as usize),
        };
        return;
    }
    let n = scaled as u64;
    if x.is_sign_negative() {
        out.push('-');
    } else if plus {
        out.push('+');
    }
    if let Some(table) = small_values(decimals) {
        // Below 10: the text from the table, one push (a push per character cost more).
        let width = decimals as usize + 1 + usize::from(decimals > 0);
        if let Some(text) = usize::try_from(n)
            .ok()
            .and_then(|n| table.get(n * width..(n + 1) * width))
        {
            out.push_str(text);
            return;
        }
    }
    // The whole part, then the decimals zero-padded (one division each, not one per digit).
    out.push_str(itoa::Buffer::new().format(n / scale));
    if decimals > 0 {
        let digits = point_and_decimals(n % scale, decimals);
        // ASCII only: pushed as chars, without a UTF-8 check of the slice.
        out.extend(digits[..=decimals as usize].iter().map(|&d| char::from(d)));
    }
}

/// `.` and the `decimals` digits of `frac` (below 10^decimals), zero-padded, in the first
/// `decimals + 1` bytes: one division each, not one per digit.
fn point_and_decimals(mut frac: u64, decimals: u32) -> [u8; 7] {
    let mut digits = *b".000000";
    for d in digits[1..=decimals as usize].iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    digits
}

/// [`push_fixed`] without `plus`, appended to bytes: a score or a coverage as the row writer
/// writes it. A value from 0 to just under 10 has its digits written straight into the row
/// (one short copy, no table, no second buffer); any other goes through [`push_fixed`].
#[inline]
pub fn push_fixed_bytes(out: &mut Vec<u8>, x: f32, decimals: u32) {
    if decimals <= 6 && x.is_finite() && !x.is_sign_negative() && x < 10.0 {
        let scale = 10u64.pow(decimals);
        let n = round_half_even(f64::from(x) * scale as f64) as u64;
        if n < 10 * scale {
            out.push(b'0' + (n / scale) as u8);
            if decimals > 0 {
                out.extend_from_slice(&point_and_decimals(n % scale, decimals)[..=decimals as usize]);
            }
            return;
        }
    }
    let mut text = String::new();
    push_fixed(&mut text, x, decimals, false);
    out.extend_from_slice(text.as_bytes());
}

/// Decimals up to which [`small_values`] keeps a table.
const TABLED_DECIMALS: u32 = 3;

/// For `decimals` up to [`TABLED_DECIMALS`]: the text of every value from 0 to just under 10
/// in steps of 10^-decimals (`0.000`, `0.001`, ... `9.999`), one after another, each as wide as
/// the others: scores, coverage and impacts are all such values. Built once per process.
fn small_values(decimals: u32) -> Option<&'static str> {
    const TABLES_LEN: usize = TABLED_DECIMALS as usize + 1;
    static TABLES: [OnceLock<String>; TABLES_LEN] = [const { OnceLock::new() }; TABLES_LEN];
    let table = TABLES.get(decimals as usize)?;
    Some(table.get_or_init(|| {
        let scale = 10u64.pow(decimals);
        let mut text = String::new();
        for n in 0..10 * scale {
            text.push_str(itoa::Buffer::new().format(n / scale));
            if decimals > 0 {
                text.push('.');
                let frac = itoa::Buffer::new().format(n % scale).to_string();
                for _ in frac.len()..decimals as usize {
                    text.push('0');
                }
                text.push_str(&frac);
            }
        }
        text
    }))
}

/// `x.round_ties_even()` without a call into libm (the baseline x86-64 target has no rounding
/// instruction): below 2^52, adding and subtracting 2^52 rounds to an integer in the default
/// rounding mode, which is half to even.
pub(crate) fn round_half_even(x: f64) -> f64 {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    let a = x.abs();
    if a < TWO_52 {
        ((a + TWO_52) - TWO_52).copysign(x)
    } else {
        x.round_ties_even()
    }
}

#[cfg(test)]
mod tests {
    use super::{push_fixed, push_fixed_bytes, round_half_even};

    #[test]
    fn rounding_half_to_even_matches_the_standard_library() {
        let mut x = -10_000.0f64;
        while x <= 10_000.0 {
            for y in [x, x + 0.5, x + 0.25, x + 0.499_999, x + 0.500_001] {
                assert_eq!(round_half_even(y).to_bits(), y.round_ties_even().to_bits(), "{y}");
            }
            x += 0.125;
        }
        for y in [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            4.5e15,
            -4.5e15,
            1e300,
            f64::INFINITY,
        ] {
            assert_eq!(round_half_even(y).to_bits(), y.round_ties_even().to_bits(), "{y}");
        }
        assert!(round_half_even(f64::NAN).is_nan());
    }

    fn fixed(x: f32, d: u32, plus: bool) -> String {
        let mut s = String::new();
        push_fixed(&mut s, x, d, plus);
        s
    }

    #[test]
    fn matches_the_standard_formatter() {
        let mut values: Vec<f32> = vec![
            0.0,
            -0.0,
            0.05,
            -0.05,
            0.25,
            0.75,
            1.25,
            2.5,
            0.0625,
            0.0005,
            4.9995,
            5.0,
            1e-7,
            123456.79,
            // Either side of where the table of small values ends.
            9.9994,
            9.9996,
            -9.9996,
            9.95,
            10.0,
            10.04,
            99.95,
            9.99995,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        // A deterministic spread over the ranges tierd writes (scores, coverage, impacts).
        let mut rng = crate::test_rng::Xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            values.push(((rng.next() >> 40) as f32 / (1u64 << 24) as f32) * 10.0 - 5.0);
        }
        for x in values {
            for d in 0..=4 {
                assert_eq!(
                    fixed(x, d, false),
                    format!("{x:.*}", d as usize),
                    "{x} with {d} decimals"
                );
                assert_eq!(
                    fixed(x, d, true),
                    format!("{x:+.*}", d as usize),
                    "{x:+} with {d} decimals"
                );
                let mut bytes = b"row,".to_vec();
                push_fixed_bytes(&mut bytes, x, d);
                assert_eq!(
                    bytes,
                    format!("row,{x:.*}", d as usize).as_bytes(),
                    "{x} with {d} decimals"
                );
            }
        }
    }
}
