//! Contacts for the platforms that match people (Google Customer Match, Meta custom audiences):
//! normalised and hashed exactly as each platform documents, so that a hash tierd computes is the
//! hash the platform computes.
//!
//! Checked against the platforms' pages (through the search tool, December 2026):
//!
//! - **Google Customer Match** ("Format your customer data file", support.google.com/google-ads/
//!   answer/7659867, and its hashed-data guidelines, answer/7476159; template at g.co/wudy8r):
//!   CSV in UTF-8 with the English headers `Email,Phone,First Name,Last Name,Country,Zip`
//!   (address matching needs all four of names, country and zip). Email, phone and names are
//!   SHA-256 hashed after lower-casing and removing extra spaces; phone numbers in E.164 (with
//!   `+` and country code) before hashing; Country (ISO 3166-1 alpha-2) and Zip are not hashed.
//! - **Meta custom audiences** ("How to format a customer list", facebook.com/business/help/
//!   2082575038703844, identifiers `email, phone, fn, ln, zip, country` among others; the
//!   normalisation of developers.facebook.com/docs/marketing-api/conversions-api/parameters/
//!   customer-information-parameters, which shows expected hashes): every identifier SHA-256
//!   hashed; email trimmed and lower-cased; phone digits only with the country code and no
//!   leading zeros (E.164 without `+`); names lower-cased without punctuation, other letters kept
//!   in UTF-8 (`valéry`); zip lower-cased without spaces or dashes (US: the first 5 digits);
//!   country as a lower-case ISO 3166-1 alpha-2 code.
//!
//! Google removes dots from `gmail.com` local parts only for enhanced conversions, not in its
//! Customer Match file guidelines, and Meta documents no such rule: tierd therefore keeps dots.
//! Hashes are lower-case hex, as both platforms' examples show.

use sha2::{Digest, Sha256};

use super::Contact;

/// SHA-256 of `text`, lower-case hex.
pub(crate) fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Email: trimmed, spaces removed, lower-cased; `None` unless it has an `@`.
fn email(raw: Option<&str>) -> Option<String> {
    let e: String = non_empty(raw)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    e.contains('@').then_some(e)
}

/// ISO 3166-1 alpha-2 code, upper case, when `raw` is one.
fn country_code(raw: Option<&str>) -> Option<String> {
    let c = non_empty(raw)?;
    (c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic())).then(|| c.to_ascii_uppercase())
}

/// E.164 (`+16505551212`): parsed in the contact's country, or as international when it starts
/// with `+`; `None` when it cannot be read as a valid number.
fn e164(raw: Option<&str>, country: Option<&str>) -> Option<String> {
    let raw = non_empty(raw)?;
    let region = country.and_then(|c| c.parse::<phonenumber::country::Id>().ok());
    if region.is_none() && !raw.starts_with('+') {
        return None;
    }
    let number = phonenumber::parse(region, raw).ok()?;
    phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Lower case, runs of whitespace as one space, trimmed (Google's "remove extra spaces").
fn collapsed_lower(raw: Option<&str>) -> Option<String> {
    let s = non_empty(raw)?;
    Some(s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase())
}

/// Meta's names: lower case, letters only (punctuation and spaces dropped), UTF-8 kept.
fn meta_name(raw: Option<&str>) -> Option<String> {
    let s: String = non_empty(raw)?
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect();
    (!s.is_empty()).then_some(s)
}

/// Meta's zip: lower case, no spaces or dashes; a US zip is its first 5 digits.
fn meta_zip(raw: Option<&str>, country: Option<&str>) -> Option<String> {
    let z: String = non_empty(raw)?
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if z.is_empty() {
        return None;
    }
    if country == Some("US") {
        return Some(z.chars().take(5).collect());
    }
    Some(z)
}

/// What a contact becomes in a platform's file: the cells in the template's order, and whether
/// its phone had to be left out (unreadable, or no country to read it in).
pub(crate) struct PersonRow {
    pub(crate) cells: Vec<String>,
    pub(crate) phone_dropped: bool,
}

/// The Google Customer Match template's header.
pub const GOOGLE_HEADER: [&str; 6] = ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"];

/// The Meta customer list's header for the identifiers tierd has.
pub const META_HEADER: [&str; 6] = ["email", "phone", "fn", "ln", "zip", "country"];

fn hashed(v: Option<String>) -> String {
    v.map(|v| sha256_hex(&v)).unwrap_or_default()
}

/// A contact as a Google Customer Match row; `None` when it has nothing Google can match on (an
/// email, a phone, or names with country and zip).
pub(crate) fn google_row(c: &Contact) -> Option<PersonRow> {
    let country = country_code(c.country.as_deref());
    let email = email(c.email.as_deref());
    let phone = e164(c.phone.as_deref(), country.as_deref());
    let phone_dropped = phone.is_none() && non_empty(c.phone.as_deref()).is_some();
    let first = collapsed_lower(c.first_name.as_deref());
    let last = collapsed_lower(c.last_name.as_deref());
    let zip = non_empty(c.zip.as_deref()).map(str::to_string);
    let address = first.is_some() && last.is_some() && country.is_some() && zip.is_some();
    if email.is_none() && phone.is_none() && !address {
        return None;
    }
    Some(PersonRow {
        cells: vec![
            hashed(email),
            hashed(phone),
            hashed(first),
            hashed(last),
            country.map(|c| c.to_ascii_lowercase()).unwrap_or_default(),
            zip.unwrap_or_default(),
        ],
        phone_dropped,
    })
}

/// A contact as a Meta customer-list row; `None` when it has neither email nor phone nor a name.
pub(crate) fn meta_row(c: &Contact) -> Option<PersonRow> {
    let country = country_code(c.country.as_deref());
    let email = email(c.email.as_deref());
    let phone = e164(c.phone.as_deref(), country.as_deref()).map(|p| p.trim_start_matches('+').to_string());
    let phone_dropped = phone.is_none() && non_empty(c.phone.as_deref()).is_some();
    let first = meta_name(c.first_name.as_deref());
    let last = meta_name(c.last_name.as_deref());
    if email.is_none() && phone.is_none() && (first.is_none() || last.is_none()) {
        return None;
    }
    let zip = meta_zip(c.zip.as_deref(), country.as_deref());
    Some(PersonRow {
        cells: vec![
            hashed(email),
            hashed(phone),
            hashed(first),
            hashed(last),
            hashed(zip),
            hashed(country.map(|c| c.to_ascii_lowercase())),
        ],
        phone_dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(email: &str, phone: &str, first: &str, last: &str, country: &str, zip: &str) -> Contact {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Contact {
            account_id: "hubspot:1".to_string(),
            email: opt(email),
            phone: opt(phone),
            first_name: opt(first),
            last_name: opt(last),
            country: opt(country),
            zip: opt(zip),
        }
    }

    #[test]
    fn meta_hashes_match_the_examples_meta_publishes() {
        // Inputs and expected SHA-256 outputs from Meta's customer information parameters page.
        let row = meta_row(&contact(
            " John_Smith@gmail.com ",
            "(650)555-1212",
            "Mary",
            "Valéry",
            "US",
            "",
        ))
        .expect("matchable");
        assert_eq!(
            row.cells[0],
            "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
        );
        assert_eq!(
            row.cells[1],
            "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
        );
        assert_eq!(
            row.cells[2],
            "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"
        );
        assert_eq!(
            row.cells[3],
            "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"
        );
        assert_eq!(row.cells[4], "", "no zip, empty cell");
        assert!(!row.phone_dropped);
    }

    #[test]
    fn normalisation_per_platform() {
        assert_eq!(
            e164(Some("(650) 555-1212"), Some("US")).as_deref(),
            Some("+16505551212")
        );
        assert_eq!(
            e164(Some("030 901820"), Some("DE")).as_deref(),
            Some("+4930901820")
        );
        assert_eq!(
            e164(Some("+44 20 7183 8750"), None).as_deref(),
            Some("+442071838750")
        );
        assert_eq!(e164(Some("555-1212"), None), None, "no country, no E.164");
        assert_eq!(
            email(Some(" Jane.Doe @Example.COM ")).as_deref(),
            Some("jane.doe@example.com")
        );
        assert_eq!(
            email(Some("first.last@gmail.com")).as_deref(),
            Some("first.last@gmail.com"),
            "dots kept"
        );
        assert_eq!(
            collapsed_lower(Some("  Mary   Ann ")).as_deref(),
            Some("mary ann")
        );
        assert_eq!(meta_name(Some("O'Neil-Smith")).as_deref(), Some("oneilsmith"));
        assert_eq!(meta_zip(Some("94103-1234"), Some("US")).as_deref(), Some("94103"));
        assert_eq!(meta_zip(Some("SW1A 1AA"), Some("GB")).as_deref(), Some("sw1a1aa"));
    }

    #[test]
    fn a_contact_without_identifiers_is_left_out() {
        assert!(
            google_row(&contact("", "", "Ann", "Lee", "", "")).is_none(),
            "address needs country and zip"
        );
        assert!(google_row(&contact("", "", "Ann", "Lee", "US", "94103")).is_some());
        assert!(meta_row(&contact("", "12", "", "", "", "")).is_none());
        let row = google_row(&contact("a@b.example", "12", "", "", "", "")).expect("email suffices");
        assert!(row.phone_dropped);
        assert_eq!(row.cells[1], "");
    }
}
