"""Drives the dashboard of a running `tierd run` in headless Chromium (see run.sh).

Checks: the sign-in page for a signed-out browser, sign-in with the admin token, the session
cookie's flags, every page rendering with no console error, the pyramid's numbers equal to
/api/v1/tiers, an account search, and a rejected push retried from its page leaving the pending
list after the next run. Saves screenshots of the main pages.
"""

import argparse
import json
import os
import sqlite3
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

TOKEN = os.environ["DASH_API_TOKEN"]


def api(base, path, body=None):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + TOKEN})
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def wait_for_runs(base, count, deadline=180):
    """Waits until `count` runs finished; returns them, newest first."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            runs = api(base, "/api/v1/runs")["runs"]
            done = [r for r in runs if r["status"] != "running"]
            if len(done) >= count:
                return runs
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"fewer than {count} runs finished in {deadline} s")


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)
    print("ok:", what)


def replaced(driver, old, within=15):
    """Waits until the page holding `old` (an element found before a submit or a click) has been
    replaced by the next one, and that one has loaded.

    `submit()` and `click()` return before the browser has the answer: elements found straight
    after them can be the old page's, and go stale while they are read."""
    WebDriverWait(driver, within).until(expected_conditions.staleness_of(old))
    WebDriverWait(driver, within).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def page_shows(driver, text, within=15):
    """True once the page (after a click's navigation) contains `text`; False after `within` s.

    A click on a form's button returns before the browser has loaded the answer, so reading
    page_source straight after it races the navigation."""
    try:
        WebDriverWait(driver, within).until(lambda d: text in d.page_source)
        return True
    except Exception:
        print(f"--- {driver.current_url} shows:", driver.find_element(By.TAG_NAME, "body").text[:2000],
              file=sys.stderr)
        return False


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--profile", required=True)
    p.add_argument("--screenshots", required=True)
    a = p.parse_args()
    base = a.base

    runs = wait_for_runs(base, 1)
    check(runs[0]["status"] == "succeeded", f"the first run succeeded ({runs[0]['status']})")

    # A record the CRM rejected for good, as a sync --once before the daemon would have left it.
    now = int(time.time() * 1000)
    db = sqlite3.connect(a.db, timeout=10)
    rejected = db.execute(
        "SELECT id FROM accounts WHERE pushed_tier IS NOT NULL ORDER BY id LIMIT 1").fetchone()[0]
    db.execute(
        """INSERT INTO pending_pushes (account, tier, score_bucket, reason, attempts, last_error,
               permanent, next_attempt_at, first_failed_run, first_failed_at, last_failed_at)
           SELECT id, tier, ROUND(score, 1), 'browser test', 1,
               'INVALID_OPTION: the tier was not one of the allowed options', TRUE, 0, updated_run, ?, ?
           FROM accounts WHERE id = ?""", (now, now, rejected))
    db.commit()
    db.close()

    options = webdriver.ChromeOptions()
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000", f"--user-data-dir={a.profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Debian's browser and driver, never a download.
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))
    driver.implicitly_wait(5)
    os.makedirs(a.screenshots, exist_ok=True)
    try:
        driver.get(base + "/")
        check("Sign in to tierd" in driver.title, "a signed-out browser gets the sign-in page")
        check(not driver.find_elements(By.CSS_SELECTOR, "#pyramid-now"), "and no data")
        driver.save_screenshot(os.path.join(a.screenshots, "sign-in.png"))
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form.login button").click()
        check(driver.find_elements(By.CSS_SELECTOR, "#pyramid-now"), "signed in, the pyramid shows")
        check(TOKEN not in driver.current_url, "the token is not in the URL")

        cookie = driver.get_cookie("tierd_session")
        check(cookie is not None and cookie["httpOnly"], "the session cookie is HttpOnly")
        check(cookie["sameSite"] == "Strict", f"the session cookie is SameSite=Strict ({cookie['sameSite']})")
        check(TOKEN not in cookie["value"], "the cookie does not hold the token")

        tiers = api(base, "/api/v1/tiers")["counts"]
        for tier, n in tiers.items():
            shown = driver.find_element(By.CSS_SELECTOR, f'td[data-tier="{tier}"]').text
            check(int(shown.replace(",", "")) == n, f"pyramid {tier}: {shown} = /api/v1/tiers {n}")
        driver.save_screenshot(os.path.join(a.screenshots, "pyramid.png"))

        for path, shot in [("/movements", "movements.png"), ("/runs", "runs.png"),
                           ("/accounts", "accounts.png"), ("/plugins", None), ("/pending", None)]:
            driver.get(base + path)
            check(driver.find_element(By.TAG_NAME, "h1").text, f"{path} renders")
            if shot:
                driver.save_screenshot(os.path.join(a.screenshots, shot))

        # Search by the start of a name, through the form (keyboard only).
        name = api(base, "/api/v1/accounts/" + urllib.request.quote(rejected, safe=""))["name"]
        driver.get(base + "/accounts")
        box = driver.find_element(By.ID, "q")
        box.send_keys(name[:6].lower())
        unsearched = driver.find_element(By.ID, "accounts")
        box.submit()
        replaced(driver, unsearched)
        links = [l.text for l in driver.find_elements(By.CSS_SELECTOR, "#accounts tbody th a")]
        check(name in links, f"searching '{name[:6].lower()}' finds {name}")
        link = driver.find_element(By.LINK_TEXT, name)
        link.click()
        replaced(driver, link)
        check(driver.find_element(By.TAG_NAME, "h1").text == name, "the account page opens")
        check("INVALID_OPTION" in driver.page_source, "the account page shows its pending push")
        driver.save_screenshot(os.path.join(a.screenshots, "account.png"))

        driver.get(base + "/pending")
        row = driver.find_element(By.CSS_SELECTOR, f'tr[data-account="{rejected}"]')
        driver.save_screenshot(os.path.join(a.screenshots, "pending.png"))
        row.find_element(By.TAG_NAME, "button").click()
        check(page_shows(driver, "will be retried"), "the retry is acknowledged")
        api(base, "/api/v1/runs", {"kind": "incremental"})
        wait_for_runs(base, 2)
        # The pyramid again, now with a line per tier over the two runs.
        driver.get(base + "/")
        driver.save_screenshot(os.path.join(a.screenshots, "pyramid.png"))
        driver.get(base + "/pending")
        check(not driver.find_elements(By.CSS_SELECTOR, f'tr[data-account="{rejected}"]'),
              "the retried push left the pending list after the next run")

        errors = console_errors(driver)
        check(not errors, f"no console errors ({errors})")

        # Sign-out ends the session.
        driver.find_element(By.CSS_SELECTOR, "form.signout button").click()
        check(page_shows(driver, "Sign in to tierd"), "sign-out answers with the sign-in page")
        driver.get(base + "/runs")
        check("Sign in to tierd" in driver.title, "signed out")
    finally:
        driver.quit()
    print("dashboard: all browser checks passed")


if __name__ == "__main__":
    main()
