//! Fingerprinting throughput with the shipped rule set on ~100 KB pages.
//!
//! Prints pages per second (one core) besides criterion's timing; `docs/benchmarks.md` records
//! the figure. Run: `cargo bench -p technographic --bench fingerprint`.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use technographic::{Page, RuleSet};

/// A plausible 100 KB marketing page: a head with a typical B2B tag set, then many content
/// sections (text, links, images) so the html patterns scan realistic markup.
fn page(n: usize) -> Page {
    let mut html = String::with_capacity(110_000);
    html.push_str(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="WordPress 6.4.2"><meta name="viewport" content="width=device-width">
<link rel="stylesheet" href="/wp-content/themes/acme/style.css?ver=1.2">
<script async src="https://www.googletagmanager.com/gtag/js?id=G-ABC123"></script>
<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}gtag('js',new Date());gtag('config','G-ABC123');</script>
<script src="https://js.hs-scripts.com/4242.js" async defer></script>
<script src="https://cdn.segment.com/analytics.js/v1/wk/analytics.min.js"></script>
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://js.stripe.com/v3/"></script>
</head><body><header><nav><a href="/">Home</a><a href="/product">Product</a><a href="/careers">Careers</a></nav></header>
"#,
    );
    let mut i = 0;
    while html.len() < 100_000 {
        i += 1;
        html.push_str(&format!(
            r#"<section class="feature feature-{i}"><h2>Feature {i} for page {n}</h2>
<p>Our platform helps revenue teams understand their accounts, prioritise outreach and close faster.
Integrations keep every system in sync; dashboards show what moved and why. <a href="/docs/{i}">Read more</a></p>
<img src="/wp-content/uploads/2025/0{m}/feature-{i}.png" alt="feature {i}" loading="lazy" width="640" height="360">
<ul><li>Fast setup</li><li>Secure by default</li><li>Works with your stack</li></ul></section>
"#,
            m = i % 9 + 1
        ));
    }
    html.push_str("<footer><a href=\"https://join.slack.com/t/acme-community/shared_invite/x\">Community</a></footer></body></html>");
    let headers = [
        ("server", "cloudflare"),
        ("cf-ray", "8a1b2c3d4e5f-AMS"),
        ("set-cookie", "__cf_bm=xyz; path=/"),
    ];
    Page::new(&format!("https://acme-{n}.com/"), headers, html)
}

fn fingerprint(c: &mut Criterion) {
    let rules = RuleSet::builtin().expect("shipped rules load");
    let pages: Vec<Page> = (0..8).map(page).collect();
    let detected = rules.detect(&pages[..1]);
    assert!(detected.iter().any(|d| d.name == "Segment"), "{detected:?}");

    // A plain timing first, so the figure is printed even with criterion's output filtered.
    let rounds = 200;
    let start = Instant::now();
    for r in 0..rounds {
        std::hint::black_box(rules.detect(std::slice::from_ref(&pages[r % pages.len()])));
    }
    let secs = start.elapsed().as_secs_f64();
    let kb = pages[0].html.len() as f64 / 1024.0;
    println!(
        "fingerprint: {:.0} pages/s on one core ({kb:.0} KB pages, {} technologies)",
        rounds as f64 / secs,
        rules.report().technologies
    );

    let mut group = c.benchmark_group("fingerprint");
    group.throughput(Throughput::Elements(1));
    group.bench_function("detect_100kb_page", |b| {
        let mut k = 0;
        b.iter(|| {
            k += 1;
            rules.detect(std::slice::from_ref(&pages[k % pages.len()]))
        })
    });
    group.finish();
}

criterion_group!(benches, fingerprint);
criterion_main!(benches);
