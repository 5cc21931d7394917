//! One fetched page, split once into what fingerprint patterns look at: headers, cookies,
//! script URLs, inline scripts and meta tags.
//!
//! The HTML is scanned with a small tag reader rather than a full parser: detection only needs
//! `<script>` and `<meta>` tags, and a page is read once per fetch.

use std::collections::HashMap;

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
            if !is_script && !name.eq_ignore_ascii_case("meta") {
                continue;
            }
            let Some(close) = html[name_end..].find('>') else {
                break;
            };
            let attrs = &html[name_end..name_end + close];
            at = name_end + close + 1;
            if is_script {
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
    fn truncated_html_does_not_panic() {
        for html in [
            "<script",
            "<script src=",
            "<meta content=\"x",
            "<script>never closed",
            "<",
        ] {
            let _ = Page::new("u", [], html.to_owned());
        }
    }
}
