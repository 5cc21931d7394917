//! One fetched page, split once into what fingerprint patterns look at: headers, cookies,
//! script URLs, inline scripts, meta tags, inline styles and the visible text; plus what the
//! site shows besides its pages (`robots.txt`, probed paths, DNS records, the certificate's
//! issuer), which the provider attaches to the home page.
//!
//! The HTML is scanned with a small tag reader rather than a full parser: detection only needs
//! `<script>`, `<meta>`, `<style>` and `<link rel=stylesheet>` tags and the text between tags,
//! and a page is read once per fetch.

use std::collections::{BTreeMap, HashMap};

/// A page as fingerprinting sees it.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The URL that was fetched.
    pub url: String,
    /// Response headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// Cookies set by the response, names lower-cased.
    pub cookies: HashMap<String, String>,
    /// The body.
    pub html: String,
    /// `src` of every `<script>` tag.
    pub script_src: Vec<String>,
    /// Content of every inline `<script>` tag.
    pub scripts: Vec<String>,
    /// `<meta name|property="..." content="...">`, names lower-cased.
    pub meta: Vec<(String, String)>,
    /// The text a reader sees: the body without tags, scripts and styles, entities decoded,
    /// white space collapsed (what `innerText` gives in a browser, near enough).
    pub text: String,
    /// Inline `<style>` content, then any stylesheets the provider fetched, one per line.
    pub css: String,
    /// `href` of every `<link rel="stylesheet">`.
    pub stylesheets: Vec<String>,
    /// The site's `/robots.txt`, when fetched.
    pub robots: Option<String>,
    /// The issuer of the site's TLS certificate (e.g. `C=US, O=Let's Encrypt, CN=R3`), when known.
    pub cert_issuer: Option<String>,
    /// DNS records of the site's domain by lower-case type (`txt`, `mx`), when resolved.
    pub dns: BTreeMap<String, Vec<String>>,
    /// Bodies of the probed paths, by path.
    pub probe: BTreeMap<String, Vec<String>>,
}

impl Page {
    /// Splits a response into a page. `headers` may hold several `set-cookie` values joined
    /// by newlines.
    pub fn new<'a>(url: &str, headers: impl IntoIterator<Item = (&'a str, &'a str)>, html: String) -> Page {
        let mut page = Page {
            url: url.to_owned(),
            ..Page::default()
        };
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            if name == "set-cookie" {
                for line in value.split('\n') {
                    if let Some((cookie, value)) = parse_set_cookie(line) {
                        page.cookies.insert(cookie, value);
                    }
                }
            }
            page.headers.insert(name, value.to_owned());
        }
        page.scan_tags(&html);
        page.text = visible_text(&html);
        page.html = html;
        page
    }

    fn scan_tags(&mut self, html: &str) {
        let bytes = html.as_bytes();
        let mut at = 0;
        while let Some(offset) = html[at..].find('<') {
            let start = at + offset + 1;
            at = start;
            let name_end = bytes[start..]
                .iter()
                .position(|b| !b.is_ascii_alphabetic())
                .map_or(bytes.len(), |n| start + n);
            let name = &html[start..name_end];
            let is_script = name.eq_ignore_ascii_case("script");
            let is_style = name.eq_ignore_ascii_case("style");
            let is_link = name.eq_ignore_ascii_case("link");
            if !is_script && !is_style && !is_link && !name.eq_ignore_ascii_case("meta") {
                continue;
            }
            let Some(close) = html[name_end..].find('>') else {
                break;
            };
            let attrs = &html[name_end..name_end + close];
            at = name_end + close + 1;
            if is_style {
                if let Some(end) = find_ascii_ci(&html[at..], "</style") {
                    let body = html[at..at + end].trim();
                    if !body.is_empty() {
                        if !self.css.is_empty() {
                            self.css.push('\n');
                        }
                        self.css.push_str(body);
                    }
                    at += end;
                }
            } else if is_link {
                let stylesheet = attribute(attrs, "rel").is_some_and(|rel| {
                    rel.split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("stylesheet"))
                });
                if let Some(href) = attribute(attrs, "href").filter(|_| stylesheet) {
                    self.stylesheets.push(href.to_owned());
                }
            } else if is_script {
                if let Some(src) = attribute(attrs, "src") {
                    self.script_src.push(src.to_owned());
                } else if let Some(end) = find_ascii_ci(&html[at..], "</script") {
                    let body = html[at..at + end].trim();
                    if !body.is_empty() {
                        self.scripts.push(body.to_owned());
                    }
                    at += end;
                }
            } else if let Some(content) = attribute(attrs, "content") {
                if let Some(name) = attribute(attrs, "name").or_else(|| attribute(attrs, "property")) {
                    self.meta.push((name.to_ascii_lowercase(), content.to_owned()));
                }
            }
        }
    }
}

/// The visible text of `html`: from `<body>` on when there is one, tags dropped, the content
/// of `script`, `style`, `noscript` and `template` skipped, common entities decoded, runs of
/// white space collapsed to one space.
fn visible_text(html: &str) -> String {
    const SKIPPED: [&str; 4] = ["script", "style", "noscript", "template"];
    let start = find_ascii_ci(html, "<body").unwrap_or(0);
    let mut raw = String::new();
    let mut rest = &html[start..];
    while let Some(lt) = rest.find('<') {
        raw.push_str(&rest[..lt]);
        raw.push(' ');
        let tag = &rest[lt + 1..];
        let name_len = tag
            .bytes()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(tag.len());
        let name = &tag[..name_len];
        let Some(gt) = tag.find('>') else {
            rest = "";
            break;
        };
        rest = &tag[gt + 1..];
        if let Some(skip) = SKIPPED.iter().find(|s| name.eq_ignore_ascii_case(s)) {
            match find_ascii_ci(rest, &format!("</{skip}")) {
                Some(end) => rest = &rest[end..],
                None => rest = "",
            }
        }
    }
    raw.push_str(rest);
    let decoded = decode_entities(&raw);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes the entities pages use in running text; anything else is left as written.
fn decode_entities(text: &str) -> String {
    const NAMED: [(&str, &str); 7] = [
        ("&amp;", "&"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&apos;", "'"),
        ("&nbsp;", " "),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match NAMED.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((e, c)) => {
                out.push_str(c);
                rest = &rest[e.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `name=value; Path=/...` -> (lower-case name, value).
fn parse_set_cookie(line: &str) -> Option<(String, String)> {
    let pair = line.split(';').next()?.trim();
    let (name, value) = pair.split_once('=')?;
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_ascii_lowercase(), value.trim().to_owned()))
}

/// The value of attribute `name` within a tag's attribute text (quoted or bare).
fn attribute<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let bytes = attrs.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'=' | b'/' | b'>') {
            i += 1;
        }
        let key = &attrs[key_start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            if key.is_empty() {
                i += 1;
            }
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let end = attrs[i + 1..].find(q as char).map_or(attrs.len(), |n| i + 1 + n);
                let v = &attrs[i + 1..end];
                i = end + 1;
                v
            }
            _ => {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                &attrs[start..i]
            }
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
    None
}

/// Byte offset of `needle` (ASCII) in `hay`, ignoring ASCII case.
fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    hay.as_bytes()
        .windows(n.len())
        .position(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_scripts_metas_and_cookies_are_extracted() {
        let html = r#"<html><head>
            <META name="Generator" content="WordPress 6.4.2">
            <meta property='og:site_name' content=Acme>
            <script async src="https://cdn.example.com/a.js?v=1"></script>
            <SCRIPT>window.dataLayer = [];</SCRIPT>
            <script type="text/javascript">  </script>
            <scripted>not a tag we read</scripted>
            </head></html>"#;
        let page = Page::new(
            "https://acme.test/",
            [
                ("Set-Cookie", "_mkto_trk=id:123; Path=/\nAWSALB=abc; Expires=x"),
                ("Server", "nginx"),
            ],
            html.to_owned(),
        );
        assert_eq!(page.script_src, vec!["https://cdn.example.com/a.js?v=1"]);
        assert_eq!(page.scripts, vec!["window.dataLayer = [];"]);
        assert_eq!(
            page.meta,
            vec![
                ("generator".into(), "WordPress 6.4.2".into()),
                ("og:site_name".into(), "Acme".into())
            ]
        );
        assert_eq!(page.cookies.get("_mkto_trk").map(String::as_str), Some("id:123"));
        assert_eq!(page.cookies.get("awsalb").map(String::as_str), Some("abc"));
        assert_eq!(page.headers.get("server").map(String::as_str), Some("nginx"));
    }

    #[test]
    fn text_styles_and_stylesheets_are_extracted() {
        let html = r#"<html><head><title>T</title><style>.btn{color:red}</style>
            <link rel="preload stylesheet" href="/a.css"><link rel="icon" href="/i.png">
            <script>var hidden = "not text";</script></head>
            <body><h1>Powered&nbsp;by  <b>Acme</b> &amp; Co</h1><noscript>enable js</noscript>
            <style>.x{}</style><p>Tom&#39;s shop</p></body></html>"#;
        let page = Page::new("https://acme.test/", [], html.to_owned());
        assert_eq!(page.text, "Powered by Acme & Co Tom's shop");
        assert_eq!(page.css, ".btn{color:red}\n.x{}");
        assert_eq!(page.stylesheets, vec!["/a.css"]);
    }

    #[test]
    fn truncated_html_does_not_panic() {
        for html in [
            "<script",
            "<script src=",
            "<meta content=\"x",
            "<script>never closed",
            "<style>never closed",
            "<body><b",
            "<",
        ] {
            let _ = Page::new("u", [], html.to_owned());
        }
    }
}
