"""A pandas implementation of tierd's default model (config/model.toml) and tiering
(config/tierd.toml), written as a RevOps analyst's notebook would be, to measure
`tierd score` against.

In good faith: whole-column numpy, every text column factorised so each distinct text is
parsed once, float32 wherever tierd computes in f32 (weights, points, sums) and float64 where
tierd uses f64 (numbers, ages, potential value), so scores and tiers come out identical.
It writes ids, scores and tiers (tierd also writes coverage and an explanation per account).

    python peer.py ACCOUNTS.csv OUT.csv AS_OF(YYYY-MM-DD)
"""

import sys
import time

import numpy as np
import pandas as pd

F32 = np.float32

# The default model (config/model.toml, version 2026.12.1), criterion by criterion. Every
# criterion counts: a blank scores the criterion's blank points (the rule's lowest points, or
# under `missing = "zero"` what the value none scores).
INDUSTRY = {"software": 5, "financial services": 5, "telecommunications": 5, "healthcare": 5,
            "media": 4.5, "retail": 4.5, "professional services": 4, "logistics": 4,
            "manufacturing": 4, "energy": 4, "education": 2, "government": 1.5, "non-profit": 1}
REGION = {"north america": 5, "emea": 5, "apac": 4.5, "latam": 4}
ORG_TYPE = {"public": 5, "private": 5, "education": 2, "nonprofit": 1, "government": 1.5}
WAREHOUSES = ["snowflake", "databricks", "bigquery", "redshift"]
COMPLEMENTARY = ["dbt", "fivetran", "segment", "amplitude", "mixpanel", "salesforce", "marketo"]
COMPETITORS = ["hightouch", "census", "rudderstack"]
INF = np.inf
SIZE_BANDS = [(-INF, 20, 0.5), (20, 50, 2.5), (50, 200, 4), (200, 20000, 5), (20000, INF, 5)]
VISIT_BANDS = [(-INF, 1, 1.2), (1, 5, 4.5), (5, INF, 5)]
RENEWAL_BANDS = [(-INF, 0, 2.5), (0, 90, 5), (90, 180, 4.5), (180, 365, 3.5), (365, INF, 2.5)]
VALUE_BANDS = [(-INF, 10000, 0.5), (10000, 30000, 3), (30000, INF, 5)]
SIZE_VALUE = [(-INF, 50, 6000), (50, 200, 18000), (200, 1000, 45000), (1000, 5000, 120000),
              (5000, 20000, 250000), (20000, INF, 400000)]
# tierd orders components by name.
COMPONENT_WEIGHTS = {"engagement": 0.25, "fit": 0.35, "timing": 0.05, "value": 0.35}
THRESHOLDS = (4500, 3750, 3000)  # tier_1, tier_2, tier_3 in thousandths
MIN_COVERAGE = (600, 400, 200)  # thousandths of coverage for tier_1, tier_2, tier_3
CAPS = (3.0, 12.0)  # percent of all accounts, tier_1 and tier_2
OVERRIDE_DAYS = 30  # a demo request within 30 days lifts one tier
TIER_NAMES = np.array(["tier_1", "tier_2", "tier_3", "untiered"], dtype=object)

COLUMNS = {
    "id": str, "firmographic.industry": str, "firmographic.employee_count": "float64",
    "firmographic.annual_revenue": "float64", "firmographic.region": str,
    "firmographic.org_type": str, "technographic.technologies": str,
    "contracts.renewal_date": str, "contracts.is_competitor": str,
    "engagement.site_visits_30d": "float64", "engagement.demo_requests": str,
    "engagement.webinars": str, "engagement.content_downloads": str, "crm.expected_acv": "float64",
}


def bands(x, table, otherwise=0.0):
    """Points (float32) of number column `x` by [min, max) bands; NaN stays unknown."""
    out = np.full(x.shape, otherwise, dtype=F32)
    for lo, hi, p in table:
        out[(x >= lo) & (x < hi)] = F32(p)
    return out


def factorised(col, per_unique):
    """Applies `per_unique` (an array function) to the distinct texts of `col` only.
    Returns (values per row, known per row)."""
    codes, uniques = pd.factorize(col)
    values = per_unique(pd.Series(uniques, dtype=object))
    known = codes >= 0
    return np.asarray(values)[np.where(known, codes, 0)], known


def mapped(col, table, otherwise=0.0):
    """Points (float32) of a text column by a case-insensitive map, `otherwise` outside it."""
    def per_unique(u):
        return u.str.strip().str.lower().map(table).fillna(otherwise).to_numpy(F32)
    return factorised(col, per_unique)


def tech_points(col):
    """Every technographic criterion from one factorisation of the technologies column."""
    def per_unique(u):
        # One row per (distinct list, item); items factorised too, so a membership matrix
        # [distinct list, distinct item] answers every criterion.
        items = u.str.split(";").explode()
        owner = items.index.to_numpy()
        codes, names = pd.factorize(items.str.strip().str.lower())
        member = np.zeros((len(u), len(names) + 1), dtype=bool)
        member[owner, np.where(codes >= 0, codes, len(names))] = True
        column = {name: i for i, name in enumerate(names)}
        no = np.zeros(len(u), dtype=bool)
        has = {t: member[:, column[t]] if t in column else no
               for t in WAREHOUSES + COMPLEMENTARY + COMPETITORS}
        n_wh = sum(has[t].astype(np.int32) for t in WAREHOUSES)
        n_comp = sum(has[t].astype(np.int32) for t in COMPLEMENTARY)
        n_rival = sum(has[t].astype(np.int32) for t in COMPETITORS)
        target = np.where(n_wh > 0, F32(5), F32(1.5))
        compl = np.where(n_comp > 0, np.minimum(n_comp.astype(F32) * F32(4), F32(5)), F32(2.5))
        modern = np.where(has["dbt"] & has["fivetran"], F32(5), F32(3))
        rival = np.where(n_rival > 0, F32(1), F32(5))
        return np.stack([target, compl, modern, rival], axis=1)
    codes, uniques = pd.factorize(col)
    table = per_unique(pd.Series(uniques, dtype=object))
    known = codes >= 0
    rows = table[np.where(known, codes, 0)]
    return [rows[:, i] for i in range(4)], known


def day_numbers(texts):
    """'YYYY-MM-DD' texts (NaN allowed) -> days since 1970 as float64, NaN when absent."""
    d = pd.to_datetime(texts, format="%Y-%m-%d", errors="coerce")
    return (d.to_numpy("datetime64[D]").astype("int64").astype("float64")
            + np.where(d.isna().to_numpy(), np.nan, 0.0))


def events(col, as_of_day):
    """A date-list column -> (row codes, number of distinct lists, owner list of each event,
    age in days of each event). Each distinct list is split once, each distinct date parsed once."""
    codes, uniques = pd.factorize(col)
    if len(uniques) == 0:
        return codes, 0, np.zeros(0, dtype=np.int64), np.zeros(0)
    items = pd.Series(uniques, dtype=object).str.split(";").explode()
    owner = items.index.to_numpy().astype(np.int64)
    item_codes, dates = pd.factorize(items.str.strip())
    days = day_numbers(pd.Series(dates, dtype=object))
    ages = as_of_day - np.where(item_codes >= 0, days[np.where(item_codes >= 0, item_codes, 0)], np.nan)
    return codes, len(uniques), owner, ages


def per_row(codes, per_list, fill):
    """Values per distinct list -> values per row (`fill` where the row has no value)."""
    if len(per_list) == 0:
        return np.full(codes.shape, fill)
    return np.where(codes >= 0, per_list[np.where(codes >= 0, codes, 0)], fill)


def recency(ev, table, otherwise):
    """tierd's recency bands: points (float32) by the age in days of the latest event that has
    happened (dated on or before the as-of date); `otherwise` without one, or a blank."""
    codes, n, owner, ages = ev
    happened = ages >= 0
    latest = np.full(n, np.inf)
    if happened.any():
        youngest = pd.Series(ages[happened]).groupby(owner[happened]).min()
        latest[youngest.index.to_numpy()] = youngest.to_numpy()
    per_list = bands(latest, table, otherwise)
    return per_row(codes, per_list, F32(otherwise)).astype(F32)


def within(ev, days):
    """Whether a row has an event that happened at most `days` ago."""
    codes, n, owner, ages = ev
    hits = np.bincount(owner, weights=((ages >= 0) & (ages <= days)).astype(np.float64), minlength=n)
    return per_row(codes, hits > 0, False).astype(bool)


def score(df, as_of):
    as_of_day = float(np.datetime64(as_of, "D").astype("int64"))
    n = len(df)

    # Potential value (f64): the CRM's estimate, else by size, else 0.05% of revenue.
    acv = df["crm.expected_acv"].to_numpy()
    emp = df["firmographic.employee_count"].to_numpy()
    rev = df["firmographic.annual_revenue"].to_numpy()
    by_size = np.full(n, np.nan)
    for lo, hi, v in SIZE_VALUE:
        by_size[(emp >= lo) & (emp < hi)] = v
    pv = np.where(~np.isnan(acv), acv, np.where(~np.isnan(by_size), by_size, rev * 0.0005))

    ind, ind_k = mapped(df["firmographic.industry"], INDUSTRY, 2)
    reg, reg_k = mapped(df["firmographic.region"], REGION)
    org, org_k = mapped(df["firmographic.org_type"], ORG_TYPE)
    (target, compl, modern, rival), tech_k = tech_points(df["technographic.technologies"])
    demo = events(df["engagement.demo_requests"], as_of_day)
    webinars = events(df["engagement.webinars"], as_of_day)
    downloads = events(df["engagement.content_downloads"], as_of_day)
    visits = df["engagement.site_visits_30d"].to_numpy()
    renewal, ren_k = factorised(df["contracts.renewal_date"],
                                lambda u: day_numbers(u.str.strip()) - as_of_day)
    comp, comp_k = factorised(
        df["contracts.is_competitor"],
        lambda u: u.str.strip().str.lower().map(
            {"true": 5, "yes": 5, "1": 5, "y": 5, "false": 3, "no": 3, "0": 3, "n": 3}).to_numpy(F32))

    ones = np.ones(n, dtype=bool)

    def known_or(points, known, blank):
        """A criterion's points, its blank points where the fact is unknown."""
        return np.where(known, points, F32(blank)).astype(F32)

    # (weight, points, counts toward coverage) per criterion, in model order, components by
    # name. Engagement criteria are `missing = "zero"`: a blank scores the value none and counts.
    components = {
        "engagement": [
            (2, recency(demo, [(-INF, 90, 5), (90, 180, 4.5)], 2.5), ones),
            (5, bands(np.where(np.isnan(visits), 0.0, visits), VISIT_BANDS), ones),
            (1, recency(webinars, [(-INF, 365, 5)], 2.5), ones),
            (1, recency(downloads, [(-INF, 180, 5)], 2.5), ones),
        ],
        "fit": [
            (3, known_or(ind, ind_k, 1), ind_k),
            (2.5, known_or(bands(emp, SIZE_BANDS), ~np.isnan(emp), 0.5), ~np.isnan(emp)),
            (1, known_or(reg, reg_k, 0), reg_k),
            (1, known_or(org, org_k, 0), org_k),
            (2.5, known_or(target, tech_k, 1.5), tech_k),
            (1.5, known_or(compl, tech_k, 2.5), tech_k),
            (0.5, known_or(modern, tech_k, 3), tech_k),
            (1, known_or(rival, tech_k, 1), tech_k),
        ],
        "timing": [
            (2, known_or(bands(renewal, RENEWAL_BANDS), ren_k, 2.5), ren_k),
            (1, known_or(comp, comp_k, 3), comp_k),
        ],
        "value": [(1, known_or(bands(pv, VALUE_BANDS), ~np.isnan(pv), 0.5), ~np.isnan(pv))],
    }

    total = np.zeros(n, dtype=F32)
    scored = F32(0)
    covered = np.zeros(n, dtype=F32)
    all_weight = F32(0)
    for name, criteria in components.items():
        cw = F32(COMPONENT_WEIGHTS[name])
        wp = np.zeros(n, dtype=F32)
        w_cov = np.zeros(n, dtype=F32)
        w_all = F32(0)
        for weight, points, counts in criteria:
            weight = F32(weight)
            w_all = F32(w_all + weight)
            wp = wp + weight * points
            w_cov = w_cov + np.where(counts, weight, F32(0))
        all_weight = F32(all_weight + cw)
        covered = covered + (cw * w_cov) / w_all
        total = total + cw * (wp / w_all)
        scored = F32(scored + cw)
    raw = total / scored
    milli = np.clip(np.rint(raw.astype(np.float64) * 1000.0), 0, 5000).astype(np.int32)
    coverage = np.clip(covered / all_weight, F32(0), F32(1))
    coverage_milli = np.maximum(np.rint(coverage.astype(np.float64) * 1000.0), 0)

    # Tiers: thresholds, a demo request within 30 days lifts one tier, too little coverage
    # holds an account down to the best tier its coverage allows, then the caps.
    tier = np.full(n, 3, dtype=np.int8)
    tier[milli >= THRESHOLDS[2]] = 2
    tier[milli >= THRESHOLDS[1]] = 1
    tier[milli >= THRESHOLDS[0]] = 0
    fresh = within(demo, OVERRIDE_DAYS)
    tier = np.where(fresh & (tier > 0), tier - 1, tier).astype(np.int8)
    allowed = np.full(n, 3, dtype=np.int8)
    for t in (2, 1, 0):
        allowed[coverage_milli >= MIN_COVERAGE[t]] = t
    tier = np.maximum(tier, allowed)
    pv0 = np.where(np.isnan(pv), 0.0, pv)
    ids = df["id"].to_numpy()
    for t, pct in enumerate(CAPS):
        room = max(int(np.floor(n * pct / 100.0)), 1 if n else 0)
        seated = np.flatnonzero(tier == t)
        if len(seated) <= room:
            continue
        # Rank: score, potential value, coverage (descending), then id.
        ranked = pd.DataFrame({
            "score": milli[seated], "pv": pv0[seated], "coverage": coverage[seated],
            "id": ids[seated], "row": seated,
        }).sort_values(["score", "pv", "coverage", "id"], ascending=[False, False, False, True],
                       kind="mergesort")
        tier[ranked["row"].to_numpy()[room:]] = t + 1
    return milli, tier


def main():
    path, out, as_of = sys.argv[1], sys.argv[2], sys.argv[3]
    t0 = time.perf_counter()
    df = pd.read_csv(path, usecols=list(COLUMNS), dtype=COLUMNS, keep_default_na=False,
                     na_values=[""])
    t1 = time.perf_counter()
    milli, tier = score(df, as_of)
    t2 = time.perf_counter()
    pd.DataFrame({"id": df["id"], "score": milli / 1000.0, "tier": TIER_NAMES[tier]}).to_csv(
        out, index=False, float_format="%.3f")
    t3 = time.perf_counter()
    print(f"pandas peer: read {t1 - t0:.2f} s, score and tier {t2 - t1:.2f} s, "
          f"write {t3 - t2:.2f} s, {len(df)} accounts", file=sys.stderr)


if __name__ == "__main__":
    main()
