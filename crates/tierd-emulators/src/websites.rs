//! The company-website emulator: one synthetic site per generated account, served by `Host`
//! header, whose markup reveals the account's technologies the way those products really show
//! up on a site (script tags, meta tags, response headers, cookies, links, and job postings on
//! `/careers` for the back-office stack).
//!
//! Stacks change between **snapshots**: at each step a share of sites adopts a technology and
//! some drop one. A dropped technology's tag lingers on the site for the snapshot in which it
//! was dropped, as leftover tags do, so "removed" is only observable one snapshot later. A share
//! of sites can fail (503) or hang. Everything is a pure function of (seed, account, snapshot),
//! so tests can ask the emulator what a site shows ([`WebsiteEmulator::visible`]) and compare.
//!
//! How each technology shows up lives here, not in the technographic plugin: the emulator
//! imitates the vendors' real snippets, and the plugin's rules must recognise them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tierd_gen::{GenOptions, Generator};
use tokio::sync::Notify;

use crate::faults::splitmix;
use crate::server::Running;

/// How the website emulator's world is set up.
#[derive(Debug, Clone)]
pub struct WebsiteConfig {
    /// How many sites to serve (site `k` is generator account `k + 1`).
    pub accounts: u64,
    /// The generator seed; also seeds stack changes and failures.
    pub seed: u64,
    /// The generator's `as_of` date, `YYYY-MM-DD`.
    pub as_of: String,
    /// The snapshot served at start (0 = the generated stacks).
    pub snapshot: u32,
    /// Share of sites whose stack changes at each snapshot step (0..=1).
    pub change_share: f64,
    /// Share of sites answering 503 in a given snapshot (0..=1).
    pub error_share: f64,
    /// Share of sites that never answer in a given snapshot, until `hang_for` passes (0..=1).
    pub hang_share: f64,
    /// How long a hanging site holds the request (shutdown cuts it short).
    pub hang_for: Duration,
    /// Approximate size of a home page in bytes (filler content is added up to it).
    pub page_size: usize,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl WebsiteConfig {
    /// `accounts` sites from `seed`, as of 2026-11-24, snapshot 0, a quarter of the sites
    /// changing per snapshot, no failures, 16 KB pages, any free port.
    pub fn new(accounts: u64, seed: u64) -> Self {
        WebsiteConfig {
            accounts,
            seed,
            as_of: "2026-11-24".into(),
            snapshot: 0,
            change_share: 0.25,
            error_share: 0.0,
            hang_share: 0.0,
            hang_for: Duration::from_secs(30),
            page_size: 16 * 1024,
            port: 0,
        }
    }
}

/// How a site fails in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteFailure {
    /// Every page answers 503.
    ServerError,
    /// Requests are held open without an answer.
    Hang,
}

/// What the website emulator served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebsiteStats {
    /// Pages answered 200.
    pub pages: u64,
    /// 503 answers from failing sites.
    pub server_errors: u64,
    /// Requests held by hanging sites.
    pub hangs: u64,
    /// Requests for a host that is not one of the generated domains (404).
    pub unknown_hosts: u64,
}

/// A running website emulator.
pub struct WebsiteEmulator {
    sites: Arc<Sites>,
    running: Running,
}

struct Site {
    /// Generator account number (from 1).
    n: u64,
    name: String,
    domain: String,
    /// The generated stack: snapshot 0.
    base: Vec<&'static str>,
}

struct Sites {
    cfg: WebsiteConfig,
    sites: Vec<Site>,
    by_domain: HashMap<String, usize>,
    snapshot: AtomicU32,
    stopping: Notify,
    pages: AtomicU64,
    server_errors: AtomicU64,
    hangs: AtomicU64,
    unknown_hosts: AtomicU64,
}

type Shared = State<Arc<Sites>>;

impl WebsiteEmulator {
    /// Generates the sites and starts serving on 127.0.0.1 (`cfg.port`, 0 = any free port).
    pub async fn start(cfg: WebsiteConfig) -> anyhow::Result<WebsiteEmulator> {
        for (what, share) in [
            ("change_share", cfg.change_share),
            ("error_share", cfg.error_share),
            ("hang_share", cfg.hang_share),
        ] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&share),
                "website emulator: {what} must be within 0..=1"
            );
        }
        let as_of = cfg
            .as_of
            .parse()
            .map_err(|e| anyhow::anyhow!("website emulator: as_of is not a date: {e}"))?;
        let opts = GenOptions {
            seed: cfg.seed,
            as_of,
        };
        let count = cfg.accounts;
        let sites = tokio::task::spawn_blocking(move || {
            Generator::new(opts)
                .take(count as usize)
                .enumerate()
                .map(|(k, a)| Site {
                    n: k as u64 + 1,
                    name: a.name,
                    domain: a.domain,
                    base: a.technologies,
                })
                .collect::<Vec<_>>()
        })
        .await?;
        let by_domain = sites
            .iter()
            .enumerate()
            .map(|(i, s)| (s.domain.clone(), i))
            .collect();
        let sites = Arc::new(Sites {
            snapshot: AtomicU32::new(cfg.snapshot),
            cfg,
            sites,
            by_domain,
            stopping: Notify::new(),
            pages: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            hangs: AtomicU64::new(0),
            unknown_hosts: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/__admin/snapshot", get(get_snapshot).post(post_snapshot))
            .route("/__admin/stats", get(get_stats))
            .fallback(serve)
            .with_state(sites.clone());
        let running = Running::start(router, sites.cfg.port, "website").await?;
        Ok(WebsiteEmulator { sites, running })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// The bound address, for routing every company domain here (`resolve = {"*" = ADDR}`).
    pub fn addr(&self) -> SocketAddr {
        let url = self.base_url();
        url.trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|_| unreachable!("{url} is host:port"))
    }

    /// Serves snapshot `n` from now on.
    pub fn set_snapshot(&self, n: u32) {
        self.sites.snapshot.store(n, Ordering::SeqCst);
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> u32 {
        self.sites.snapshot.load(Ordering::SeqCst)
    }

    /// The served domains, in account order.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.sites.sites.iter().map(|s| s.domain.as_str())
    }

    /// The technologies `domain` really uses in `snapshot`, in no particular order.
    pub fn stack(&self, domain: &str, snapshot: u32) -> Option<Vec<&'static str>> {
        let site = self.sites.site(domain)?;
        Some(self.sites.evolve(site, snapshot).0)
    }

    /// The technologies `domain`'s pages reveal in `snapshot`: its stack plus the leftovers of
    /// technologies dropped in that very snapshot.
    pub fn visible(&self, domain: &str, snapshot: u32) -> Option<Vec<&'static str>> {
        let site = self.sites.site(domain)?;
        Some(self.sites.visible(site, snapshot))
    }

    /// How `domain` fails in `snapshot`, if it does.
    pub fn failure(&self, domain: &str, snapshot: u32) -> Option<SiteFailure> {
        self.sites.failure(self.sites.site(domain)?, snapshot)
    }

    /// What was served so far.
    pub fn stats(&self) -> WebsiteStats {
        self.sites.stats()
    }

    /// Stops serving; hanging requests are released first.
    pub async fn shutdown(self) {
        self.sites.stopping.notify_waiters();
        self.running.shutdown().await;
    }
}

/// A uniform number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Sites {
    fn site(&self, host: &str) -> Option<&Site> {
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        let host = host.strip_prefix("www.").unwrap_or(&host);
        self.by_domain.get(host).map(|&i| &self.sites[i])
    }

    fn hash(&self, n: u64, snapshot: u32, stream: u64) -> u64 {
        splitmix(
            self.cfg.seed ^ splitmix(n.wrapping_mul(0x1_0000_0001) ^ (u64::from(snapshot) << 40) ^ stream),
        )
    }

    /// The stack in `snapshot` and the technologies dropped in its last step.
    fn evolve(&self, site: &Site, snapshot: u32) -> (Vec<&'static str>, Vec<&'static str>) {
        let mut stack = site.base.clone();
        let mut dropped = Vec::new();
        for step in 1..=snapshot {
            dropped.clear();
            if unit(self.hash(site.n, step, 1)) >= self.cfg.change_share {
                continue;
            }
            let candidates: Vec<&'static str> = FOOTPRINTS
                .iter()
                .map(|f| f.tech)
                .filter(|t| !stack.contains(t))
                .collect();
            if !candidates.is_empty() {
                stack.push(candidates[(self.hash(site.n, step, 2) % candidates.len() as u64) as usize]);
            }
            if stack.len() > 1 && unit(self.hash(site.n, step, 3)) < 0.5 {
                // Never the technology adopted in this very step.
                let k = (self.hash(site.n, step, 4) % (stack.len() as u64 - 1)) as usize;
                dropped.push(stack.remove(k));
            }
        }
        (stack, dropped)
    }

    fn visible(&self, site: &Site, snapshot: u32) -> Vec<&'static str> {
        let (mut stack, lingering) = self.evolve(site, snapshot);
        stack.extend(lingering);
        stack
    }

    fn failure(&self, site: &Site, snapshot: u32) -> Option<SiteFailure> {
        let u = unit(self.hash(site.n, snapshot, 5));
        if u < self.cfg.error_share {
            Some(SiteFailure::ServerError)
        } else if u < self.cfg.error_share + self.cfg.hang_share {
            Some(SiteFailure::Hang)
        } else {
            None
        }
    }

    fn stats(&self) -> WebsiteStats {
        WebsiteStats {
            pages: self.pages.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            hangs: self.hangs.load(Ordering::Relaxed),
            unknown_hosts: self.unknown_hosts.load(Ordering::Relaxed),
        }
    }
}

async fn get_snapshot(State(sites): Shared) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "snapshot": sites.snapshot.load(Ordering::SeqCst) }))
}

/// `POST /__admin/snapshot` with `{"snapshot": N}`.
async fn post_snapshot(State(sites): Shared, body: Bytes) -> Response {
    let n = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("snapshot")?.as_u64())
        .and_then(|n| u32::try_from(n).ok());
    match n {
        Some(n) => {
            sites.snapshot.store(n, Ordering::SeqCst);
            Json(serde_json::json!({ "snapshot": n })).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            "expected {\"snapshot\": N} with N a non-negative integer\n",
        )
            .into_response(),
    }
}

async fn get_stats(State(sites): Shared) -> Json<WebsiteStats> {
    Json(sites.stats())
}

async fn serve(State(sites): Shared, req: Request) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or_default();
    let Some(site) = sites.site(host) else {
        sites.unknown_hosts.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::NOT_FOUND, format!("no site for host {host:?}\n")).into_response();
    };
    let snapshot = sites.snapshot.load(Ordering::SeqCst);
    match sites.failure(site, snapshot) {
        Some(SiteFailure::ServerError) => {
            sites.server_errors.fetch_add(1, Ordering::Relaxed);
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                "<h1>503 Service Temporarily Unavailable</h1>",
            )
                .into_response();
            r.headers_mut()
                .insert(header::SERVER, HeaderValue::from_static("nginx"));
            return r;
        }
        Some(SiteFailure::Hang) => {
            sites.hangs.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(sites.cfg.hang_for) => {}
                _ = sites.stopping.notified() => {}
            }
            return (StatusCode::GATEWAY_TIMEOUT, "upstream timed out").into_response();
        }
        None => {}
    }
    let techs = sites.visible(site, snapshot);
    let body = match req.uri().path() {
        "/" | "/index.html" => home_page(site, &techs, sites.cfg.page_size),
        "/careers" | "/careers/" => careers_page(site, &techs),
        _ => return (StatusCode::NOT_FOUND, "<h1>Page not found</h1>").into_response(),
    };
    sites.pages.fetch_add(1, Ordering::Relaxed);
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let fronted = techs.contains(&"Cloudflare");
    headers.insert(
        header::SERVER,
        HeaderValue::from_static(if fronted { "cloudflare" } else { "nginx" }),
    );
    for f in footprints(&techs) {
        for (name, value) in f.headers {
            if let Ok(v) = HeaderValue::from_str(&fill(value, site)) {
                headers.append(*name, v);
            }
        }
        for cookie in f.cookies {
            if let Ok(v) = HeaderValue::from_str(&format!("{}; Path=/; Secure", fill(cookie, site))) {
                headers.append(header::SET_COOKIE, v);
            }
        }
    }
    response
}

/// How one technology shows up on a site. `{slug}` and `{n}` are replaced per site.
struct Footprint {
    tech: &'static str,
    /// Markup in `<head>`.
    head: &'static str,
    /// Markup at the end of `<body>` (forms, links, widgets).
    body: &'static str,
    /// Response headers (besides `server`, which Cloudflare sets).
    headers: &'static [(&'static str, &'static str)],
    /// `name=value` of cookies it sets.
    cookies: &'static [&'static str],
    /// The skill a job posting on `/careers` asks for (back-office tools, invisible on pages).
    skill: Option<&'static str>,
}

const fn skill(tech: &'static str, name: &'static str) -> Footprint {
    Footprint {
        tech,
        head: "",
        body: "",
        headers: &[],
        cookies: &[],
        skill: Some(name),
    }
}

/// Every technology the generator emits, with its footprint.
const FOOTPRINTS: &[Footprint] = &[
    skill("Snowflake", "Snowflake"),
    skill("Databricks", "Databricks"),
    skill("BigQuery", "Google BigQuery"),
    skill("Redshift", "Amazon Redshift"),
    skill("dbt", "dbt"),
    skill("Fivetran", "Fivetran"),
    skill("Census", "Census"),
    Footprint {
        tech: "Segment",
        head: r#"<script src="https://cdn.segment.com/analytics.js/v1/wk{n}/analytics.min.js"></script>"#,
        body: "",
        headers: &[],
        cookies: &["ajs_anonymous_id=%22a{n}%22"],
        skill: None,
    },
    Footprint {
        tech: "Amplitude",
        head: r#"<script src="https://cdn.amplitude.com/libs/analytics-browser-2.11.1-min.js.gz"></script>"#,
        body: "",
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Mixpanel",
        head: r#"<script src="https://cdn.mxpnl.com/libs/mixpanel-2-latest.min.js"></script>"#,
        body: "",
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Google Analytics",
        head: r#"<script async src="https://www.googletagmanager.com/gtag/js?id=G-{n}"></script>
<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);} gtag('js', new Date()); gtag('config', 'G-{n}');</script>"#,
        body: "",
        headers: &[],
        cookies: &["_ga=GA1.1.{n}.1700000000"],
        skill: None,
    },
    Footprint {
        tech: "Salesforce",
        head: "",
        body: r#"<form action="https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8" method="POST"><input type="hidden" name="oid" value="00D{n}"><input name="email" type="email"><button>Contact sales</button></form>"#,
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "HubSpot",
        head: r#"<script type="text/javascript" id="hs-script-loader" async defer src="//js.hs-scripts.com/{n}.js"></script>"#,
        body: "",
        headers: &[],
        cookies: &["hubspotutk={n}"],
        skill: None,
    },
    Footprint {
        tech: "Marketo",
        head: r#"<script type="text/javascript" src="//munchkin.marketo.net/munchkin.js"></script>"#,
        body: "",
        headers: &[],
        cookies: &["_mkto_trk=id:{n}-ABC-123"],
        skill: None,
    },
    Footprint {
        tech: "Pardot",
        head: r#"<script type="text/javascript">piAId = '{n}'; piCId = ''; piHostname = 'pi.pardot.com';
(function() { var s = document.createElement('script'); s.src = 'https://pi.pardot.com/pd.js'; document.head.appendChild(s); })();</script>"#,
        body: "",
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Hightouch",
        head: r#"<script src="https://cdn.hightouch-events.com/browser/release/v1-latest/events.min.js"></script>"#,
        body: "",
        headers: &[],
        cookies: &["htjs_anonymous_id=%22h{n}%22"],
        skill: None,
    },
    Footprint {
        tech: "RudderStack",
        head: r#"<script src="https://cdn.rudderlabs.com/v1.1/rudder-analytics.min.js"></script>"#,
        body: "",
        headers: &[],
        cookies: &["rl_anonymous_id=r{n}"],
        skill: None,
    },
    Footprint {
        tech: "Zendesk",
        head: "",
        body: r#"<script id="ze-snippet" src="https://static.zdassets.com/ekr/snippet.js?key={n}"></script>"#,
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Intercom",
        head: "",
        body: r#"<script>window.intercomSettings = { api_base: "https://api-iam.intercom.io", app_id: "a{n}" };</script>
<script async src="https://widget.intercom.io/widget/a{n}"></script>"#,
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Stripe",
        head: r#"<script src="https://js.stripe.com/v3/"></script>"#,
        body: "",
        headers: &[],
        cookies: &["__stripe_mid={n}"],
        skill: None,
    },
    Footprint {
        tech: "Shopify",
        head: r#"<script src="https://cdn.shopify.com/shopifycloud/storefront/assets/storefront-{n}.js"></script>"#,
        body: "",
        headers: &[("x-shopid", "{n}")],
        cookies: &["_shopify_y=y{n}"],
        skill: None,
    },
    Footprint {
        tech: "WordPress",
        head: r#"<meta name="generator" content="WordPress 6.4.2">
<link rel="stylesheet" href="/wp-content/themes/{slug}/style.css?ver=6.4.2">"#,
        body: "",
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Cloudflare",
        head: "",
        body: "",
        headers: &[("cf-ray", "8{n}-AMS")],
        cookies: &["__cf_bm=b{n}"],
        skill: None,
    },
    Footprint {
        tech: "AWS",
        head: "",
        body: "",
        headers: &[("x-amz-request-id", "R{n}")],
        cookies: &["AWSALB=alb{n}"],
        skill: None,
    },
    Footprint {
        tech: "Azure",
        head: "",
        body: "",
        headers: &[("x-azure-ref", "0{n}")],
        cookies: &["ARRAffinity=arr{n}"],
        skill: None,
    },
    Footprint {
        tech: "Google Cloud",
        head: "",
        body: "",
        headers: &[("via", "1.1 google")],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Okta",
        head: "",
        body: r#"<a class="employee-login" href="https://{slug}.okta.com/app/UserHome">Employee sign-in</a>"#,
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Slack",
        head: "",
        body: r#"<a href="https://join.slack.com/t/{slug}-community/shared_invite/zt-{n}">Join our Slack community</a>"#,
        headers: &[],
        cookies: &[],
        skill: None,
    },
    Footprint {
        tech: "Jira",
        head: "",
        body: r#"<a href="https://{slug}.atlassian.net/servicedesk/customer/portals">Customer support portal</a>"#,
        headers: &[],
        cookies: &[],
        skill: None,
    },
];

fn footprints<'a>(techs: &'a [&'static str]) -> impl Iterator<Item = &'static Footprint> + 'a {
    techs
        .iter()
        .filter_map(|t| FOOTPRINTS.iter().find(|f| f.tech == *t))
}

/// Replaces `{n}` (the account number) and `{slug}` (the domain's first label).
fn fill(template: &str, site: &Site) -> String {
    let slug = site.domain.split('.').next().unwrap_or_default();
    template
        .replace("{n}", &site.n.to_string())
        .replace("{slug}", slug)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn home_page(site: &Site, techs: &[&'static str], page_size: usize) -> String {
    let name = html_escape(&site.name);
    let mut html = String::with_capacity(page_size + 4096);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name}</title>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"description\" content=\"{name}: products and services for modern teams.\">\n"
    );
    for f in footprints(techs) {
        if !f.head.is_empty() {
            html.push_str(&fill(f.head, site));
            html.push('\n');
        }
    }
    let _ = write!(
        html,
        "</head><body><header><nav><a href=\"/\">{name}</a> <a href=\"/product\">Product</a> \
         <a href=\"/pricing\">Pricing</a> <a href=\"/careers\">Careers</a></nav></header>\n<main><h1>{name}</h1>\n"
    );
    let mut section = 0;
    while html.len() < page_size {
        section += 1;
        let _ = writeln!(
            html,
            "<section id=\"s{section}\"><h2>Why teams choose {name} ({section})</h2><p>We help organisations plan, \
             measure and improve the work that matters, with reporting that explains what changed and why. \
             <a href=\"/resources/{section}\">Learn more</a></p><img src=\"/assets/img/section-{section}.webp\" \
             alt=\"\" width=\"640\" height=\"360\" loading=\"lazy\"></section>"
        );
    }
    html.push_str("</main><footer>");
    for f in footprints(techs) {
        if !f.body.is_empty() {
            html.push_str(&fill(f.body, site));
            html.push('\n');
        }
    }
    let _ = writeln!(html, "<p>&copy; {name}</p></footer></body></html>");
    html
}

fn careers_page(site: &Site, techs: &[&'static str]) -> String {
    let name = html_escape(&site.name);
    let mut skills: Vec<&str> = vec!["SQL", "Python"];
    skills.extend(footprints(techs).filter_map(|f| f.skill));
    let posting = serde_json::json!({
        "@context": "https://schema.org/",
        "@type": "JobPosting",
        "title": "Senior Data Engineer",
        "hiringOrganization": {"@type": "Organization", "name": site.name, "sameAs": format!("https://{}", site.domain)},
        "skills": skills.join(", "),
        "employmentType": "FULL_TIME",
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Careers at {name}</title>\n\
         <script type=\"application/ld+json\">{posting}</script></head>\n\
         <body><h1>Join {name}</h1><article><h2>Senior Data Engineer</h2><p>You will build and run our data \
         platform.</p></article></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn emulator(cfg: WebsiteConfig) -> WebsiteEmulator {
        WebsiteEmulator::start(cfg).await.unwrap()
    }

    async fn fetch(base: &str, host: &str, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{base}{path}"))
            .header("host", host)
            .send()
            .await
            .unwrap()
    }

    #[test]
    fn every_generated_technology_has_a_footprint() {
        let opts = GenOptions {
            seed: 3,
            as_of: "2026-11-24".parse().unwrap(),
        };
        for account in Generator::new(opts).take(3000) {
            for tech in account.technologies {
                assert!(
                    FOOTPRINTS.iter().any(|f| f.tech == tech),
                    "{tech} has no footprint"
                );
            }
        }
    }

    #[tokio::test]
    async fn sites_are_served_by_host_with_their_stack_in_the_markup() {
        let emu = emulator(WebsiteConfig::new(50, 7)).await;
        let base = emu.base_url();
        let domain = emu
            .domains()
            .find(|d| emu.visible(d, 0).unwrap().contains(&"Stripe"))
            .expect("some site uses Stripe")
            .to_owned();
        let home = fetch(&base, &domain, "/").await;
        assert_eq!(home.status(), 200);
        let body = home.text().await.unwrap();
        assert!(body.contains("https://js.stripe.com/v3/"));
        assert!(body.len() >= 16 * 1024, "{}", body.len());

        let with_warehouse = emu
            .domains()
            .find(|d| emu.visible(d, 0).unwrap().contains(&"Snowflake"))
            .map(str::to_owned);
        if let Some(d) = with_warehouse {
            let careers = fetch(&base, &format!("www.{d}:443"), "/careers")
                .await
                .text()
                .await
                .unwrap();
            assert!(careers.contains("Snowflake"), "{careers}");
        }
        assert_eq!(fetch(&base, "nobody.example", "/").await.status(), 404);
        assert_eq!(fetch(&base, &domain, "/missing").await.status(), 404);
        assert_eq!(emu.stats().unknown_hosts, 1);
        emu.shutdown().await;
    }

    #[tokio::test]
    async fn snapshots_change_some_stacks_and_dropped_tags_linger_one_snapshot() {
        let emu = emulator(WebsiteConfig::new(200, 11)).await;
        let mut adopted = 0;
        let mut dropped = 0;
        for d in emu.domains() {
            let (s0, s1, s2) = (
                emu.stack(d, 0).unwrap(),
                emu.stack(d, 1).unwrap(),
                emu.stack(d, 2).unwrap(),
            );
            adopted += s1.iter().filter(|t| !s0.contains(t)).count();
            for gone in s0.iter().filter(|t| !s1.contains(t)) {
                dropped += 1;
                assert!(
                    emu.visible(d, 1).unwrap().contains(gone),
                    "{gone} lingers in the snapshot it was dropped"
                );
                if !s2.contains(gone) {
                    assert!(
                        !emu.visible(d, 2).unwrap().contains(gone),
                        "{gone} gone a snapshot later"
                    );
                }
            }
        }
        assert!(
            adopted > 20 && dropped > 10,
            "adopted {adopted}, dropped {dropped}"
        );

        let client = reqwest::Client::new();
        let r = client
            .post(format!("{}/__admin/snapshot", emu.base_url()))
            .body(r#"{"snapshot": 3}"#);
        assert_eq!(r.send().await.unwrap().status(), 200);
        assert_eq!(emu.snapshot(), 3);
        let r = client
            .post(format!("{}/__admin/snapshot", emu.base_url()))
            .body("three");
        assert_eq!(r.send().await.unwrap().status(), 400);
        emu.shutdown().await;
    }

    #[tokio::test]
    async fn failing_sites_answer_503_or_hang_until_shutdown() {
        let mut cfg = WebsiteConfig::new(100, 5);
        (cfg.error_share, cfg.hang_share) = (0.3, 0.2);
        let emu = emulator(cfg).await;
        let failing = |kind| {
            emu.domains()
                .find(|d| emu.failure(d, 0) == Some(kind))
                .unwrap()
                .to_owned()
        };
        let (erroring, hanging) = (failing(SiteFailure::ServerError), failing(SiteFailure::Hang));
        assert_eq!(fetch(&emu.base_url(), &erroring, "/").await.status(), 503);

        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let r = client
            .get(format!("{}/", emu.base_url()))
            .header("host", hanging)
            .send()
            .await;
        assert!(r.unwrap_err().is_timeout());
        assert_eq!(emu.stats().server_errors, 1);
        emu.shutdown().await;
    }
}
