//! The statistical model: how one account is drawn from (seed, account number, as_of).
//!
//! Latent "true" values are drawn first and drive the correlations (size drives revenue,
//! org type, technologies, vendor, engagement and ACV; industry skews all of them); some
//! of them are then hidden ("unknown") by an independent mask, as real CRM data is.
//! Every aspect draws from its own stream so that changing one does not reshuffle others.

use std::fmt::Write;

use tierd_core::date::Date;

use crate::rng::Rng;
use crate::{GenOptions, SyntheticAccount};

const STREAM_FIRMO: u64 = 1;
const STREAM_NAME: u64 = 2;
const STREAM_TECH: u64 = 3;
const STREAM_CONTRACT: u64 = 4;
const STREAM_ENGAGEMENT: u64 = 5;
const STREAM_MASK: u64 = 6;
const STREAM_QUALITY: u64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Industry {
    Software,
    FinancialServices,
    Healthcare,
    Manufacturing,
    Retail,
    ProfessionalServices,
    Telecommunications,
    Media,
    Education,
    Government,
    Energy,
    NonProfit,
    Logistics,
}

use Industry::*;

/// Industry, Zipf-like weight (1000 / rank^0.8), median-size multiplier.
const INDUSTRIES: [(Industry, u32, f64); 13] = [
    (Software, 1000, 1.0),
    (FinancialServices, 574, 1.4),
    (Healthcare, 415, 1.3),
    (Manufacturing, 330, 1.5),
    (Retail, 276, 1.1),
    (ProfessionalServices, 238, 0.7),
    (Telecommunications, 211, 2.5),
    (Media, 189, 0.8),
    (Education, 172, 2.0),
    (Government, 158, 3.0),
    (Energy, 147, 2.0),
    (NonProfit, 137, 0.5),
    (Logistics, 129, 1.2),
];

impl Industry {
    fn label(self) -> &'static str {
        match self {
            Software => "Software",
            FinancialServices => "Financial Services",
            Healthcare => "Healthcare",
            Manufacturing => "Manufacturing",
            Retail => "Retail",
            ProfessionalServices => "Professional Services",
            Telecommunications => "Telecommunications",
            Media => "Media",
            Education => "Education",
            Government => "Government",
            Energy => "Energy",
            NonProfit => "Non-profit",
            Logistics => "Logistics",
        }
    }

    /// Words that end company names in this industry.
    fn name_suffixes(self) -> &'static [&'static str] {
        match self {
            Software => &[
                "Systems",
                "Labs",
                "Software",
                "Technologies",
                "Cloud",
                "Data",
                "AI",
            ],
            FinancialServices => &["Capital", "Financial", "Bank", "Insurance", "Payments"],
            Healthcare => &["Health", "Medical", "Care", "Bio", "Clinics"],
            Manufacturing => &["Industries", "Manufacturing", "Works", "Components", "Materials"],
            Retail => &["Retail", "Goods", "Stores", "Market", "Outfitters"],
            ProfessionalServices => &["Consulting", "Partners", "Advisors", "Associates"],
            Telecommunications => &["Telecom", "Networks", "Communications", "Mobile"],
            Media => &["Media", "Studios", "Publishing", "Entertainment"],
            Education => &["Academy", "University", "College", "Learning", "Schools"],
            Government => &["Agency", "Authority", "Council", "County", "Board"],
            Energy => &["Energy", "Power", "Utilities", "Renewables"],
            NonProfit => &["Foundation", "Trust", "Alliance", "Society"],
            Logistics => &["Logistics", "Freight", "Transport", "Shipping"],
        }
    }

    /// Engagement multiplier (how keen the industry is on the product).
    fn fit(self) -> f64 {
        match self {
            Software => 1.5,
            FinancialServices => 1.2,
            Government | NonProfit | Education => 0.6,
            _ => 1.0,
        }
    }
}

/// Countries of a region, with weights.
type Countries = &'static [(&'static str, u32)];

/// Region, weight, countries.
const REGIONS: [(&str, u32, Countries); 4] = [
    ("North America", 45, &[("US", 85), ("CA", 15)]),
    (
        "EMEA",
        30,
        &[("GB", 35), ("DE", 25), ("FR", 18), ("NL", 12), ("SE", 10)],
    ),
    ("APAC", 18, &[("AU", 30), ("JP", 25), ("SG", 15), ("IN", 30)]),
    ("LATAM", 7, &[("BR", 60), ("MX", 40)]),
];

/// Size bucket: 0 = under 50 employees, 1 = under 1,000, 2 = under 10,000, 3 = larger.
fn size_bucket(employees: u64) -> usize {
    match employees {
        0..=49 => 0,
        50..=999 => 1,
        1000..=9999 => 2,
        _ => 3,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Warehouse,
    /// Only drawn for accounts with a warehouse.
    Pipeline,
    Analytics,
    Crm,
    Competitor,
    /// Stripe: commoner in Software and Retail.
    Payments,
    /// Shopify: mostly Retail.
    Storefront,
    Other,
}

/// Technologies in output order, with their group and probability per size bucket.
const TECHS: [(&str, Group, [f64; 4]); 29] = [
    ("Snowflake", Group::Warehouse, [0.010, 0.06, 0.25, 0.35]),
    ("Databricks", Group::Warehouse, [0.003, 0.03, 0.15, 0.25]),
    ("BigQuery", Group::Warehouse, [0.010, 0.05, 0.12, 0.15]),
    ("Redshift", Group::Warehouse, [0.005, 0.04, 0.12, 0.18]),
    ("dbt", Group::Pipeline, [0.30, 0.40, 0.45, 0.50]),
    ("Fivetran", Group::Pipeline, [0.20, 0.30, 0.35, 0.40]),
    ("Segment", Group::Analytics, [0.010, 0.06, 0.15, 0.15]),
    ("Amplitude", Group::Analytics, [0.005, 0.05, 0.12, 0.15]),
    ("Mixpanel", Group::Analytics, [0.010, 0.05, 0.08, 0.06]),
    ("Google Analytics", Group::Other, [0.45, 0.60, 0.60, 0.55]),
    ("Salesforce", Group::Crm, [0.05, 0.35, 0.70, 0.85]),
    ("HubSpot", Group::Crm, [0.30, 0.35, 0.15, 0.08]),
    ("Marketo", Group::Crm, [0.005, 0.06, 0.25, 0.35]),
    ("Pardot", Group::Crm, [0.005, 0.05, 0.15, 0.20]),
    ("Hightouch", Group::Competitor, [0.0; 4]),
    ("Census", Group::Competitor, [0.0; 4]),
    ("RudderStack", Group::Competitor, [0.0; 4]),
    ("Zendesk", Group::Other, [0.08, 0.20, 0.30, 0.30]),
    ("Intercom", Group::Other, [0.05, 0.12, 0.10, 0.05]),
    ("Stripe", Group::Payments, [0.10, 0.15, 0.15, 0.12]),
    ("Shopify", Group::Storefront, [0.12, 0.08, 0.03, 0.01]),
    ("WordPress", Group::Other, [0.45, 0.35, 0.25, 0.20]),
    ("Cloudflare", Group::Other, [0.10, 0.25, 0.40, 0.50]),
    ("AWS", Group::Other, [0.10, 0.35, 0.60, 0.75]),
    ("Azure", Group::Other, [0.05, 0.20, 0.40, 0.60]),
    ("Google Cloud", Group::Other, [0.04, 0.12, 0.25, 0.35]),
    ("Okta", Group::Other, [0.01, 0.10, 0.40, 0.60]),
    ("Slack", Group::Other, [0.15, 0.40, 0.60, 0.60]),
    ("Jira", Group::Other, [0.05, 0.30, 0.55, 0.65]),
];

/// The competitors (also possible vendors), with weights.
const COMPETITORS: [(&str, u32); 3] = [("Hightouch", 45), ("Census", 35), ("RudderStack", 20)];

/// Vendors of accounts without a competitor in their stack.
const VENDORS: [(&str, u32); 7] = [
    ("In-house", 40),
    ("Talend", 15),
    ("Informatica", 15),
    ("MuleSoft", 15),
    ("Hightouch", 2),
    ("Census", 1),
    ("RudderStack", 1),
];

/// What every small business seems to run: tops up small stacks to a plausible minimum.
const SMALL_COMMON_TECHS: [&str; 4] = ["WordPress", "Google Analytics", "HubSpot", "Shopify"];

/// Mainstream tools used to top up bigger companies' stacks to a plausible minimum.
const COMMON_TECHS: [&str; 8] = [
    "Salesforce",
    "AWS",
    "Slack",
    "Jira",
    "Google Analytics",
    "Okta",
    "Cloudflare",
    "Azure",
];

fn tech_index(name: &str) -> usize {
    TECHS
        .iter()
        .position(|t| t.0 == name)
        .unwrap_or_else(|| unreachable!("unknown technology {name}"))
}

const NAME_HEADS: [&str; 44] = [
    "Nor", "Val", "Bright", "Zen", "Ark", "Lum", "Cor", "Tel", "Quan", "Sol", "Vel", "Mar", "Cal", "Dra",
    "Ever", "Fair", "Glen", "Hal", "Ion", "Jas", "Kel", "Lin", "Mon", "Nex", "Oak", "Pin", "Red", "Sil",
    "Stone", "Tri", "Ver", "West", "Ash", "Blue", "Crest", "Del", "Elm", "Fern", "Gran", "Har", "Nov", "Pax",
    "Rhen", "Tor",
];
const NAME_LINKS: [&str; 5] = ["o", "a", "i", "e", "er"];
const NAME_TAILS: [&str; 32] = [
    "tek", "ria", "mere", "ly", "ex", "ion", "ora", "vant", "ware", "gen", "scape", "wise", "field", "ton",
    "ford", "ia", "ix", "on", "us", "io", "ara", "ent", "ity", "well", "gate", "bridge", "dale", "worth",
    "by", "stream", "lytics", "sphere",
];
const GENERIC_SUFFIXES: [&str; 7] = [
    "Group",
    "Holdings",
    "Partners",
    "Global",
    "International",
    "Co",
    "Corp",
];

/// Overwrites `acc` with account number `n` (from 1), reusing its buffers.
pub(crate) fn fill(acc: &mut SyntheticAccount, opts: GenOptions, n: u64) {
    let GenOptions { seed, as_of } = opts;

    // Firmographics (true values; some are masked at the end).
    let mut rng = Rng::for_account(seed, n, STREAM_FIRMO);
    let (industry, size_mult) = {
        let items: [((Industry, f64), u32); 13] = INDUSTRIES.map(|(i, w, m)| ((i, m), w));
        rng.weighted(&items)
    };
    let employees = rng
        .log_normal(60.0 * size_mult, 1.7)
        .round()
        .clamp(1.0, 250_000.0) as u64;
    let bucket = size_bucket(employees);
    let (rpe_median, rpe_sigma) = match industry {
        Software | FinancialServices => (220_000.0, 0.8),
        Government | NonProfit | Education => (90_000.0, 0.4),
        Retail => (150_000.0, 0.6),
        _ => (180_000.0, 0.5),
    };
    let revenue = employees as f64 * rng.log_normal(rpe_median, rpe_sigma);
    let revenue = ((revenue / 1000.0).round() as u64).max(1) * 1000;
    let region_items: [((&str, Countries), u32); 4] = REGIONS.map(|(r, w, c)| ((r, c), w));
    let (region, countries) = rng.weighted(&region_items);
    let country = rng.weighted(countries);
    let org_type = match industry {
        Government => "government",
        NonProfit => "nonprofit",
        Education => rng.weighted(&[("education", 85), ("private", 10), ("nonprofit", 5)]),
        _ => {
            let p_public = match employees {
                0..=199 => 0.01,
                200..=999 => 0.08,
                1000..=4999 => 0.30,
                5000..=19_999 => 0.60,
                _ => 0.80,
            };
            if rng.chance(p_public) {
                "public"
            } else {
                "private"
            }
        }
    };

    // Identity.
    let mut rng = Rng::for_account(seed, n, STREAM_NAME);
    acc.id.clear();
    let _ = write!(acc.id, "acc-{n:08}");
    write_name(&mut acc.name, &mut rng, industry);
    write_domain(&mut acc.domain, &mut rng, &acc.name, n, industry, country);

    // Technologies, as a bit set over TECHS (so the list comes out in table order).
    let mut rng = Rng::for_account(seed, n, STREAM_TECH);
    let mut stack: u32 = 0;
    let mut has_warehouse = false;
    let mut competitor = None;
    for (i, &(name, group, p)) in TECHS.iter().enumerate() {
        let mut p = p[bucket];
        match group {
            Group::Warehouse => {
                p *= match industry {
                    Software | FinancialServices => 1.4,
                    Government | NonProfit | Education => 0.5,
                    Retail | Media | Telecommunications => 1.1,
                    _ => 1.0,
                };
            }
            Group::Pipeline if !has_warehouse => continue,
            Group::Pipeline | Group::Crm => {}
            Group::Analytics => {
                p *= match industry {
                    Software => 2.0,
                    Retail | Media => 1.5,
                    Government | NonProfit | Education | Manufacturing | Energy => 0.4,
                    _ => 1.0,
                };
            }
            Group::Competitor => {
                // Decided once, at the first competitor row: reverse ETL needs a warehouse.
                if name == COMPETITORS[0].0 {
                    let p = if has_warehouse { 0.30 } else { 0.035 };
                    if rng.chance(p) {
                        let c = rng.weighted(&COMPETITORS);
                        stack |= 1 << tech_index(c);
                        competitor = Some(c);
                    }
                }
                continue;
            }
            Group::Payments if matches!(industry, Software | Retail) => p *= 2.0,
            Group::Storefront => p *= if industry == Retail { 3.0 } else { 0.5 },
            Group::Payments | Group::Other => {}
        }
        if rng.chance(p.min(0.95)) {
            stack |= 1 << i;
            has_warehouse |= group == Group::Warehouse;
        }
    }
    let (min_techs, max_techs, top_up): (u32, u32, &[&str]) = match bucket {
        0 => (1, 4, &SMALL_COMMON_TECHS),
        1 => (2, 10, &COMMON_TECHS),
        _ => (5, 15, &COMMON_TECHS),
    };
    while stack.count_ones() < min_techs {
        stack |= 1 << tech_index(rng.pick(top_up));
    }
    while stack.count_ones() > max_techs {
        // Drop a random member (never the competitor, which the vendor below relies on).
        let k = rng.below(u64::from(stack.count_ones())) as u32;
        let bit = nth_set_bit(stack, k);
        if competitor.is_none_or(|c| bit != tech_index(c)) {
            stack &= !(1 << bit);
        }
    }
    acc.technologies.clear();
    acc.technologies.extend(
        TECHS
            .iter()
            .enumerate()
            .filter(|&(i, _)| stack & (1 << i) != 0)
            .map(|(_, t)| t.0),
    );

    // Contracts.
    let mut rng = Rng::for_account(seed, n, STREAM_CONTRACT);
    let vendor = match competitor {
        Some(c) if rng.chance(0.85) => Some(c),
        _ => rng
            .chance([0.35, 0.50, 0.62, 0.70][bucket])
            .then(|| rng.weighted(&VENDORS)),
    };
    acc.current_vendor = vendor;
    acc.is_competitor = vendor.map(|v| COMPETITORS.iter().any(|c| c.0 == v));
    acc.renewal_date = vendor.map(|_| as_of.add_days(rng.range_i32(-60, 540)));

    // Engagement: most accounts none, a few very engaged; better fits engage more.
    let mut rng = Rng::for_account(seed, n, STREAM_ENGAGEMENT);
    let fit = [0.8, 1.1, 1.5, 1.6][bucket] * industry.fit();
    let engaged = rng.chance((0.3 * fit).min(0.9));
    acc.site_visits_30d = if engaged {
        rng.log_normal(5.0 * fit, 1.1).round().clamp(1.0, 1000.0) as u64
    } else {
        0
    };
    let (p_demo, p_webinar, p_download) = if engaged {
        ((0.10 * fit).min(0.5), 0.25, 0.40)
    } else {
        (0.005, 0.035, 0.045)
    };
    let demos = event_count(&mut rng, p_demo, &[(1, 75), (2, 18), (3, 7)]);
    event_dates(&mut acc.demo_requests, &mut rng, demos, as_of, 180);
    let webinars = event_count(&mut rng, p_webinar, &[(1, 60), (2, 25), (3, 10), (4, 5)]);
    event_dates(&mut acc.webinars, &mut rng, webinars, as_of, 365);
    let downloads = event_count(
        &mut rng,
        p_download,
        &[(1, 45), (2, 25), (3, 13), (4, 9), (5, 5), (6, 3)],
    );
    event_dates(&mut acc.content_downloads, &mut rng, downloads, as_of, 180);

    // CRM estimate: sales sizes the bigger and the hand-raising accounts.
    let p_acv = [0.08, 0.18, 0.35, 0.50][bucket] + if demos > 0 { 0.4 } else { 0.0 };
    acc.expected_acv = rng.chance(p_acv).then(|| {
        let acv = 5000.0 * (employees as f64 / 20.0).sqrt() * rng.log_normal(1.0, 0.4);
        (acv.clamp(5000.0, 500_000.0) / 100.0).round() as u64 * 100
    });

    // Hidden quality, from the true values (before masking) and its own noise.
    let mut rng = Rng::for_account(seed, n, STREAM_QUALITY);
    let interest = if demos > 0 {
        1.0
    } else if engaged {
        0.5
    } else {
        0.0
    };
    let raw = 0.30 * (bucket as f64 / 3.0)
        + 0.20 * ((industry.fit() - 0.6) / 0.9)
        + 0.15 * f64::from(u8::from(has_warehouse))
        + 0.10 * f64::from(u8::from(competitor.is_some()))
        + 0.25 * interest
        + 0.15 * (rng.unit() - 0.5);
    acc.quality = (raw.clamp(0.0, 1.0) * 1000.0).round() as u16;

    // What the CRM does not know.
    let mut rng = Rng::for_account(seed, n, STREAM_MASK);
    acc.industry = (!rng.chance(0.03)).then(|| industry.label());
    acc.employee_count = (!rng.chance(0.04)).then_some(employees);
    acc.annual_revenue = (!rng.chance(0.10)).then_some(revenue);
    let geo_known = !rng.chance(0.02);
    acc.region = geo_known.then_some(region);
    acc.country = geo_known.then_some(country);
    acc.org_type = (!rng.chance(0.01)).then_some(org_type);
    if rng.chance(0.08) {
        acc.technologies.clear();
    }
}

/// Position of the `k`-th (from 0) set bit of `bits`.
fn nth_set_bit(mut bits: u32, k: u32) -> usize {
    for _ in 0..k {
        bits &= bits - 1;
    }
    bits.trailing_zeros() as usize
}

/// How many events: none, or with probability `p` a count drawn from `counts`.
fn event_count(rng: &mut Rng, p: f64, counts: &[(u32, u32)]) -> u32 {
    if rng.chance(p) {
        rng.weighted(counts)
    } else {
        0
    }
}

/// `count` dates in the `window` days up to and including `as_of`, most recent first.
fn event_dates(out: &mut Vec<Date>, rng: &mut Rng, count: u32, as_of: Date, window: i32) {
    out.clear();
    for _ in 0..count {
        out.push(as_of.add_days(-rng.range_i32(0, window - 1)));
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
}

/// A pronounceable company name: head + (link) + tail, and usually a suffix word.
fn write_name(out: &mut String, rng: &mut Rng, industry: Industry) {
    out.clear();
    let head = rng.pick(&NAME_HEADS);
    let tail = rng.pick(&NAME_TAILS);
    out.push_str(head);
    let is_vowel = |c: Option<char>| matches!(c, Some('a' | 'e' | 'i' | 'o' | 'u' | 'y'));
    if !is_vowel(head.chars().last()) && !is_vowel(tail.chars().next()) && rng.chance(0.5) {
        out.push_str(rng.pick(&NAME_LINKS));
    }
    out.push_str(tail);
    if rng.chance(0.75) {
        out.push(' ');
        out.push_str(if rng.chance(0.65) {
            rng.pick(industry.name_suffixes())
        } else {
            rng.pick(&GENERIC_SUFFIXES)
        });
    }
}

/// `<name-slug>-<n in base 36>.<tld>`: unique per account number, whatever the name.
fn write_domain(out: &mut String, rng: &mut Rng, name: &str, n: u64, industry: Industry, country: &str) {
    out.clear();
    out.extend(name.chars().map(|c| match c {
        ' ' => '-',
        c => c.to_ascii_lowercase(),
    }));
    out.push('-');
    let mut digits = [0u8; 13];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdefghijklmnopqrstuvwxyz"[(rest % 36) as usize];
        rest /= 36;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&b| b as char));
    let local = match country {
        "GB" => Some(("co.uk", 0.5)),
        "DE" => Some(("de", 0.5)),
        "FR" => Some(("fr", 0.4)),
        "NL" => Some(("nl", 0.4)),
        "SE" => Some(("se", 0.4)),
        "AU" => Some(("com.au", 0.5)),
        "JP" => Some(("co.jp", 0.4)),
        "IN" => Some(("in", 0.3)),
        "BR" => Some(("com.br", 0.5)),
        "MX" => Some(("com.mx", 0.4)),
        _ => None,
    };
    let local = local.filter(|&(_, p)| rng.chance(p)).map(|(tld, _)| tld);
    let u = rng.unit();
    let tld = match (local, industry) {
        (Some(tld), _) => tld,
        (_, NonProfit) if u < 0.6 => "org",
        (_, Software) if u < 0.25 => "io",
        (_, Software) if u < 0.30 => "ai",
        _ if u > 0.95 => "co",
        _ if u > 0.91 => "net",
        _ => "com",
    };
    out.push('.');
    out.push_str(tld);
}
