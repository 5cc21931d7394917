//! Charts drawn on the server as SVG: they need no script, scale with the page, and carry a
//! `<title>` each so screen readers and hover show the figures. Every chart sits beside a table
//! holding the same numbers.

use std::fmt::Write as _;

/// Tier names as shown, in `Tier::ALL` order.
pub const TIER_LABELS: [&str; 4] = ["Tier 1", "Tier 2", "Tier 3", "Untiered"];
/// Fill per tier (each passes 3:1 against the white background, as WCAG asks of graphics).
const COLOURS: [&str; 4] = ["#1b4f9c", "#2f7d32", "#a15c00", "#6b6b6b"];

/// `n` with thousands separators: 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The pyramid now: one centred bar per tier, Tier 1 on top, widths by count (square-root
/// scaled, so a small Tier 1 stays visible beside a large untiered base), each named with its
/// count in a column at the left (dark text on white, readable whatever the bar's width).
pub fn pyramid(counts: [u64; 4]) -> String {
    let (w, label_w, row, gap) = (640.0_f64, 170.0_f64, 40.0_f64, 8.0_f64);
    let h = 4.0 * (row + gap);
    let bars = w - label_w;
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"pyramid-title\">\
         <title id=\"pyramid-title\">Accounts per tier</title>"
    );
    for (i, n) in counts.iter().enumerate() {
        let width = if *n == 0 {
            0.0
        } else {
            ((*n as f64 / max).sqrt() * (bars - 10.0)).max(3.0)
        };
        let x = label_w + (bars - width) / 2.0;
        let y = i as f64 * (row + gap);
        let _ = write!(
            out,
            "<g><title>{label}: {count}</title>\
             <text x=\"0\" y=\"{ty:.1}\" class=\"bar-label\">{label}: {count}</text>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{row}\" fill=\"{fill}\" rx=\"3\"></rect></g>",
            label = TIER_LABELS[i],
            count = thousands(*n),
            fill = COLOURS[i],
            ty = y + row / 2.0 + 5.0,
        );
    }
    out.push_str("</svg>");
    out
}

/// The pyramid over time: one line per tier across runs (oldest left).
pub fn history(points: &[(String, [u64; 4])]) -> String {
    let (w, h, left, bottom, top) = (640.0_f64, 260.0_f64, 60.0_f64, 30.0_f64, 10.0_f64);
    let max = points
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = points.len().max(2) as f64;
    let x = |i: usize| left + (w - left - 10.0) * i as f64 / (n - 1.0);
    let y = |v: u64| top + (h - top - bottom) * (1.0 - v as f64 / max);
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"history-title\">\
         <title id=\"history-title\">Accounts per tier after each run</title>\
         <line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"></line>\
         <text x=\"{lx}\" y=\"{ty}\" class=\"axis-label\">{max_label}</text>\
         <text x=\"{lx}\" y=\"{b}\" class=\"axis-label\">0</text>",
        b = h - bottom,
        r = w - 10.0,
        lx = left - 6.0,
        ty = top + 10.0,
        max_label = thousands(max as u64),
    );
    for (t, colour) in COLOURS.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{:.1},{:.1}", x(i), y(c[t])))
            .collect();
        let _ = write!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.5\"></polyline>",
            path.join(" ")
        );
        for (i, (run, c)) in points.iter().enumerate() {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{run}: {} {}</title></circle>",
                x(i),
                y(c[t]),
                TIER_LABELS[t],
                thousands(c[t])
            );
        }
    }
    for (i, (run, _)) in points.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis-label run\">{run}</text>",
            x(i),
            h - 10.0
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_pyramid_shows_each_count() {
        let svg = pyramid([12, 340, 5600, 1_000_000]);
        for label in [
            "Tier 1: 12",
            "Tier 2: 340",
            "Tier 3: 5,600",
            "Untiered: 1,000,000",
        ] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
    }
}
