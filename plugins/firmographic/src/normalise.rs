//! Turning a vendor's vocabulary into the scoring model's: industries, countries and regions,
//! revenue ranges, organisation types.

/// PDL's (LinkedIn-style, lower-case) industries -> the model's industry names.
const INDUSTRIES: &[(&str, &str)] = &[
    ("computer software", "Software"),
    ("software development", "Software"),
    ("information technology and services", "Software"),
    ("internet", "Software"),
    ("computer & network security", "Software"),
    ("computer games", "Software"),
    ("financial services", "Financial Services"),
    ("banking", "Financial Services"),
    ("insurance", "Financial Services"),
    ("investment management", "Financial Services"),
    ("capital markets", "Financial Services"),
    ("venture capital & private equity", "Financial Services"),
    ("hospital & health care", "Healthcare"),
    ("medical devices", "Healthcare"),
    ("pharmaceuticals", "Healthcare"),
    ("biotechnology", "Healthcare"),
    ("health, wellness and fitness", "Healthcare"),
    ("machinery", "Manufacturing"),
    ("industrial automation", "Manufacturing"),
    ("electrical/electronic manufacturing", "Manufacturing"),
    ("automotive", "Manufacturing"),
    ("chemicals", "Manufacturing"),
    ("mechanical or industrial engineering", "Manufacturing"),
    ("retail", "Retail"),
    ("consumer goods", "Retail"),
    ("apparel & fashion", "Retail"),
    ("food & beverages", "Retail"),
    ("management consulting", "Professional Services"),
    ("accounting", "Professional Services"),
    ("legal services", "Professional Services"),
    ("law practice", "Professional Services"),
    ("staffing and recruiting", "Professional Services"),
    ("marketing and advertising", "Professional Services"),
    ("telecommunications", "Telecommunications"),
    ("wireless", "Telecommunications"),
    ("media production", "Media"),
    ("publishing", "Media"),
    ("online media", "Media"),
    ("entertainment", "Media"),
    ("broadcast media", "Media"),
    ("higher education", "Education"),
    ("education management", "Education"),
    ("e-learning", "Education"),
    ("primary/secondary education", "Education"),
    ("government administration", "Government"),
    ("public policy", "Government"),
    ("defense & space", "Government"),
    ("oil & energy", "Energy"),
    ("renewables & environment", "Energy"),
    ("utilities", "Energy"),
    ("non-profit organization management", "Non-profit"),
    ("philanthropy", "Non-profit"),
    ("civic & social organization", "Non-profit"),
    ("logistics and supply chain", "Logistics"),
    ("transportation/trucking/railroad", "Logistics"),
    ("package/freight delivery", "Logistics"),
    ("warehousing", "Logistics"),
];

/// The model's industry names (also accepted as input, in any case).
const MODEL_INDUSTRIES: [&str; 13] = [
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Professional Services",
    "Telecommunications",
    "Media",
    "Education",
    "Government",
    "Energy",
    "Non-profit",
    "Logistics",
];

/// The model's name for `industry`; an industry it has no name for is kept as given (the
/// model scores it with its `otherwise` points).
pub(crate) fn industry(industry: &str) -> String {
    let lower = industry.trim().to_lowercase();
    if let Some(&(_, model)) = INDUSTRIES.iter().find(|(pdl, _)| *pdl == lower) {
        return model.to_owned();
    }
    if let Some(model) = MODEL_INDUSTRIES.iter().find(|m| m.eq_ignore_ascii_case(&lower)) {
        return (*model).to_owned();
    }
    industry.trim().to_owned()
}

/// Country name (PDL spells them in lower case), ISO 3166 alpha-2 code, tierd region.
const COUNTRIES: &[(&str, &str, &str)] = &[
    ("united states", "US", "North America"),
    ("canada", "CA", "North America"),
    ("united kingdom", "GB", "EMEA"),
    ("ireland", "IE", "EMEA"),
    ("germany", "DE", "EMEA"),
    ("france", "FR", "EMEA"),
    ("netherlands", "NL", "EMEA"),
    ("belgium", "BE", "EMEA"),
    ("luxembourg", "LU", "EMEA"),
    ("switzerland", "CH", "EMEA"),
    ("austria", "AT", "EMEA"),
    ("spain", "ES", "EMEA"),
    ("portugal", "PT", "EMEA"),
    ("italy", "IT", "EMEA"),
    ("sweden", "SE", "EMEA"),
    ("norway", "NO", "EMEA"),
    ("denmark", "DK", "EMEA"),
    ("finland", "FI", "EMEA"),
    ("poland", "PL", "EMEA"),
    ("czechia", "CZ", "EMEA"),
    ("israel", "IL", "EMEA"),
    ("united arab emirates", "AE", "EMEA"),
    ("saudi arabia", "SA", "EMEA"),
    ("south africa", "ZA", "EMEA"),
    ("nigeria", "NG", "EMEA"),
    ("egypt", "EG", "EMEA"),
    ("turkey", "TR", "EMEA"),
    ("australia", "AU", "APAC"),
    ("new zealand", "NZ", "APAC"),
    ("japan", "JP", "APAC"),
    ("south korea", "KR", "APAC"),
    ("china", "CN", "APAC"),
    ("hong kong", "HK", "APAC"),
    ("taiwan", "TW", "APAC"),
    ("singapore", "SG", "APAC"),
    ("india", "IN", "APAC"),
    ("indonesia", "ID", "APAC"),
    ("malaysia", "MY", "APAC"),
    ("philippines", "PH", "APAC"),
    ("vietnam", "VN", "APAC"),
    ("thailand", "TH", "APAC"),
    ("brazil", "BR", "LATAM"),
    ("mexico", "MX", "LATAM"),
    ("argentina", "AR", "LATAM"),
    ("chile", "CL", "LATAM"),
    ("colombia", "CO", "LATAM"),
    ("peru", "PE", "LATAM"),
];

/// The ISO alpha-2 code of a country given by name (any case) or code.
pub(crate) fn country_code(country: &str) -> Option<&'static str> {
    let c = country.trim();
    COUNTRIES
        .iter()
        .find(|(name, code, _)| name.eq_ignore_ascii_case(c) || code.eq_ignore_ascii_case(c))
        .map(|&(_, code, _)| code)
}

/// tierd's region (`North America`, `EMEA`, `APAC`, `LATAM`) of an ISO alpha-2 code.
pub(crate) fn region(code: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(_, c, _)| *c == code)
        .map(|&(_, _, region)| region)
}

/// The midpoint in dollars of a PDL revenue range (`$1M-$10M` -> 5,500,000); an open range
/// (`$10B+`) counts as its lower bound.
pub(crate) fn revenue_midpoint(range: &str) -> Option<f64> {
    fn amount(s: &str) -> Option<f64> {
        let s = s.trim().trim_start_matches('$').replace(',', "");
        let (digits, scale) = match s.chars().last()? {
            'K' | 'k' => (&s[..s.len() - 1], 1e3),
            'M' | 'm' => (&s[..s.len() - 1], 1e6),
            'B' | 'b' => (&s[..s.len() - 1], 1e9),
            'T' | 't' => (&s[..s.len() - 1], 1e12),
            _ => (s.as_str(), 1.0),
        };
        digits.trim().parse::<f64>().ok().map(|v| v * scale)
    }
    let range = range.trim();
    if let Some(lower) = range.strip_suffix('+') {
        return amount(lower);
    }
    let (low, high) = range.split_once('-')?;
    Some((amount(low)? + amount(high)?) / 2.0)
}

/// The midpoint of a PDL size range (`51-200` -> 125); `10001+` counts as its lower bound.
pub(crate) fn size_midpoint(range: &str) -> Option<f64> {
    let range = range.trim();
    if let Some(lower) = range.strip_suffix('+') {
        return lower.replace(',', "").parse().ok();
    }
    let (low, high) = range.split_once('-')?;
    let low: f64 = low.trim().replace(',', "").parse().ok()?;
    let high: f64 = high.trim().replace(',', "").parse().ok()?;
    Some(((low + high) / 2.0).round())
}

/// PDL's size range for an employee count, so both sources fill `size_range` alike.
pub(crate) fn size_range(employees: f64) -> &'static str {
    match employees {
        e if e <= 10.0 => "1-10",
        e if e <= 50.0 => "11-50",
        e if e <= 200.0 => "51-200",
        e if e <= 500.0 => "201-500",
        e if e <= 1000.0 => "501-1000",
        e if e <= 5000.0 => "1001-5000",
        e if e <= 10_000.0 => "5001-10000",
        _ => "10001+",
    }
}

/// The model's organisation type (`public`, `private`, `nonprofit`, `government`, `education`).
pub(crate) fn org_type(kind: &str) -> String {
    match kind.trim().to_lowercase().as_str() {
        "educational" | "education" => "education".into(),
        "public_subsidiary" | "public" => "public".into(),
        "non-profit" | "nonprofit" | "non_profit" => "nonprofit".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn industries_map_to_model_names_and_unknown_ones_are_kept() {
        assert_eq!(industry("computer software"), "Software");
        assert_eq!(industry("Hospital & Health Care"), "Healthcare");
        assert_eq!(industry("non-profit"), "Non-profit");
        assert_eq!(industry("financial services"), "Financial Services");
        assert_eq!(industry("ranching"), "ranching");
    }

    #[test]
    fn countries_resolve_by_name_or_code_with_their_region() {
        assert_eq!(country_code("united states"), Some("US"));
        assert_eq!(country_code("de"), Some("DE"));
        assert_eq!(country_code("atlantis"), None);
        assert_eq!(region("JP"), Some("APAC"));
        assert_eq!(region("BR"), Some("LATAM"));
        assert_eq!(region("GB"), Some("EMEA"));
    }

    #[test]
    fn revenue_and_size_ranges_give_midpoints() {
        assert_eq!(revenue_midpoint("$1M-$10M"), Some(5_500_000.0));
        assert_eq!(revenue_midpoint("$0-$1M"), Some(500_000.0));
        assert_eq!(revenue_midpoint("$500M-$1B"), Some(750_000_000.0));
        assert_eq!(revenue_midpoint("$10B+"), Some(10_000_000_000.0));
        assert_eq!(revenue_midpoint("lots"), None);
        assert_eq!(size_midpoint("51-200"), Some(126.0));
        assert_eq!(size_midpoint("10001+"), Some(10_001.0));
        assert_eq!(size_range(83.0), "51-200");
    }

    #[test]
    fn org_types_follow_the_model() {
        assert_eq!(org_type("educational"), "education");
        assert_eq!(org_type("public_subsidiary"), "public");
        assert_eq!(org_type("Private"), "private");
    }
}
