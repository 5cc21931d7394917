//! The people at the seeded companies: the same few contacts per company for the HubSpot and
//! Salesforce emulators, derived from the generator's account and the seed alone, so a contact
//! is reproducible from (seed, company number, position).
//!
//! The mix is what a CRM holds: up to three people per company (some companies have none), an
//! email in the company's domain for most (written with stray capitals or spaces now and then),
//! some without email, some without phone, phones in the national format of the company's
//! country (which needs the country to become E.164), others already international, and a few
//! people with no country at all. Knows nothing of either vendor's wire format.

use tierd_gen::SyntheticAccount;

use crate::faults::splitmix;

/// First names: (as written, as in an email address).
const FIRST: [(&str, &str); 12] = [
    ("Ada", "ada"),
    ("Zoë", "zoe"),
    ("José", "jose"),
    ("Mary Ann", "maryann"),
    ("Liam", "liam"),
    ("Priya", "priya"),
    ("Kenji", "kenji"),
    ("Sofia", "sofia"),
    ("Noah", "noah"),
    ("Ingrid", "ingrid"),
    ("Lucas", "lucas"),
    ("Amara", "amara"),
];

/// Last names: (as written, as in an email address).
const LAST: [(&str, &str); 12] = [
    ("Lovelace", "lovelace"),
    ("O'Neil", "oneil"),
    ("García", "garcia"),
    ("Smith-Jones", "smith-jones"),
    ("Nakamura", "nakamura"),
    ("Müller", "mueller"),
    ("Okafor", "okafor"),
    ("Dubois", "dubois"),
    ("Janssen", "janssen"),
    ("Lindqvist", "lindqvist"),
    ("Silva", "silva"),
    ("Patel", "patel"),
];

/// One person at a company, as a CRM holds them (raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// First name (`Mary Ann`, `Zoë`).
    pub first_name: &'static str,
    /// Last name (`O'Neil`, `García`).
    pub last_name: &'static str,
    /// Email, possibly with stray capitals and spaces.
    pub email: Option<String>,
    /// Business phone, national or international.
    pub phone: Option<String>,
    /// Mobile phone, international.
    pub mobile: Option<String>,
    /// ISO 3166-1 alpha-2, as the company's.
    pub country: Option<&'static str>,
    /// Postal code.
    pub zip: Option<String>,
}

/// Most people a company has.
pub const MAX_PER_COMPANY: u64 = 3;

/// A phone number of `country` in its national format, `n` varying the subscriber digits:
/// shapes of each country's numbering plan (the example numbers of libphonenumber's metadata).
fn national_phone(country: &str, n: u64) -> Option<String> {
    let d = n % 100;
    Some(match country {
        "US" => format!("(201) 555-01{d:02}"),
        "CA" => format!("(506) 234-56{d:02}"),
        "GB" => format!("020 7946 00{d:02}"),
        "DE" => format!("030 1234 56{d:02}"),
        "FR" => format!("01 23 45 67 {d:02}"),
        "NL" => format!("010 123 45{d:02}"),
        "AU" => format!("(02) 1234 56{d:02}"),
        "JP" => format!("03-1234-56{d:02}"),
        _ => return None,
    })
}

/// The same kind of number written internationally.
fn international_phone(n: u64) -> String {
    let d = n % 100;
    match n % 3 {
        0 => format!("+44 20 7946 01{d:02}"),
        1 => format!("+1 201-555-01{d:02}"),
        _ => format!("+49 30 1234 57{d:02}"),
    }
}

fn zip(country: &str, n: u64) -> String {
    match country {
        "US" => format!("{:05}", 10_000 + n % 89_999),
        "GB" => format!("SW1A {}AA", n % 10),
        "CA" => format!("K1A 0B{}", n % 10),
        _ => format!("{:05}", 10_000 + n % 89_999),
    }
}

/// The people of company `k` (0-based), whose generated account is `account`: what both
/// emulators serve for it, and what tests compare a connector's contacts with.
pub fn people_of(seed: u64, k: u64, account: &SyntheticAccount) -> Vec<Person> {
    let h = splitmix(seed ^ 0x7065_6f70_6c65 ^ k.wrapping_mul(0x9E37_79B9));
    let count = h % (MAX_PER_COMPANY + 1);
    (0..count)
        .map(|j| {
            let p = splitmix(h ^ (j + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let (first, first_mail) = FIRST[(p % FIRST.len() as u64) as usize];
            let (last, last_mail) = LAST[((p >> 8) % LAST.len() as u64) as usize];
            // One in eight has no country recorded.
            let country = account.country.filter(|_| (p >> 16) % 8 != 0);
            let email = match (p >> 20) % 6 {
                0 => None,
                1 => Some(format!(
                    "  {}.{}@{} ",
                    capitalise(first_mail),
                    capitalise(last_mail),
                    account.domain.to_uppercase()
                )),
                _ => Some(format!("{first_mail}.{last_mail}@{}", account.domain)),
            };
            let n = p >> 28;
            let (phone, mobile) = match (p >> 24) % 4 {
                0 => (None, None),
                1 => (None, Some(international_phone(n))),
                2 => (
                    country
                        .and_then(|c| national_phone(c, n))
                        .or_else(|| Some(international_phone(n))),
                    None,
                ),
                _ => (Some(international_phone(n)), None),
            };
            Person {
                first_name: first,
                last_name: last,
                email,
                phone,
                mobile,
                country,
                zip: country.filter(|_| (p >> 40) % 3 != 0).map(|c| zip(c, n)),
            }
        })
        .collect()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierd_gen::{GenOptions, Generator};

    #[test]
    fn people_are_the_same_for_a_seed_and_mixed_as_a_crm_holds_them() {
        let opts = GenOptions {
            seed: 7,
            as_of: "2026-11-24".parse().expect("date"),
        };
        let accounts: Vec<_> = Generator::new(opts).take(200).collect();
        let all: Vec<Person> = accounts
            .iter()
            .enumerate()
            .flat_map(|(k, a)| people_of(7, k as u64, a))
            .collect();
        let again: Vec<Person> = accounts
            .iter()
            .enumerate()
            .flat_map(|(k, a)| people_of(7, k as u64, a))
            .collect();
        assert_eq!(all, again);
        assert!(accounts
            .iter()
            .enumerate()
            .any(|(k, a)| people_of(7, k as u64, a).is_empty()));
        assert!(all.iter().any(|p| p.email.is_none()));
        assert!(all.iter().any(|p| p.phone.is_none() && p.mobile.is_none()));
        assert!(all
            .iter()
            .any(|p| p.phone.as_deref().is_some_and(|x| !x.starts_with('+'))));
        assert!(all
            .iter()
            .any(|p| p.phone.as_deref().is_some_and(|x| x.starts_with('+'))));
        assert!(all.iter().any(|p| p.country.is_none()));
        assert!(all
            .iter()
            .any(|p| p.email.as_deref().is_some_and(|e| e.starts_with(' '))));
    }
}
