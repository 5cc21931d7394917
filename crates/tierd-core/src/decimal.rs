//! Fixed-point text for scores, coverage and impacts, written without `core::fmt`.
//!
//! Formatting floats through `format!("{:.3}")` costs more than scoring an account, and
//! tierd writes several per account. An `f32` times 10^d (d <= 6) is exact in `f64`, so
//! rounding that product half-to-even gives the same digits `{:.d}` prints: outputs stay
//! byte-identical to the standard formatter (a test checks this over many values).

/// Appends `x` with `decimals` digits after the point (at most 6), `+` before positive values
/// when `plus` is set. Non-finite values fall back to the standard formatter.
pub fn push_fixed(out: &mut String, x: f32, decimals: u32, plus: bool) {
    assert!(decimals <= 6, "push_fixed supports up to 6 decimals");
    let scale = 10u64.pow(decimals);
    let scaled = (f64::from(x).abs() * scale as f64).round_ties_even();
    if !x.is_finite() || scaled >= 1e15 {
        use std::fmt::Write as _;
        let _ = match plus {
            true => write!(out, "{x:+.*}", decimals as usize),
            false => write!(out, "{x:.*}", decimals as usize),
        };
        return;
    }
    let mut n = scaled as u64;
    // Sign, up to 16 digits and the point, written from the end and appended at once (one
    // `String::push` per character cost a tenth of writing a row).
    let mut buf = [0u8; 24];
    let mut at = buf.len();
    let mut written = 0;
    // At least one digit before the point.
    while n > 0 || written <= decimals {
        if written == decimals && decimals > 0 {
            at -= 1;
            buf[at] = b'.';
        }
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        written += 1;
    }
    if x.is_sign_negative() {
        at -= 1;
        buf[at] = b'-';
    } else if plus {
        at -= 1;
        buf[at] = b'+';
    }
    // Only ASCII digits, signs and points were written.
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::push_fixed;

    fn fixed(x: f32, d: u32, plus: bool) -> String {
        let mut s = String::new();
        push_fixed(&mut s, x, d, plus);
        s
    }

    #[test]
    fn matches_the_standard_formatter() {
        let mut values: Vec<f32> = vec![
            0.0, -0.0, 0.05, -0.05, 0.25, 0.75, 1.25, 2.5, 0.0625, 0.0005, 4.9995, 5.0, 1e-7, 123456.79,
        ];
        // A deterministic spread over the ranges tierd writes (scores, coverage, impacts).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            values.push(((state >> 40) as f32 / (1u64 << 24) as f32) * 10.0 - 5.0);
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
            }
        }
    }
}
