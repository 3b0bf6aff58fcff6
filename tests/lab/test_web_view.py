"""The live web view in headless Chromium (Debian's chromium and chromedriver; Selenium never
downloads a browser or a driver), served by `tenet api` on a running lab: the page shows every
node of the lab, a host's tables, a VN's members, a link's rates, and reflects an attach and a
`tenet link set` within 2 s of the store holding them."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tenet.lab.lab import Lab

from api_process import serving
from waiting import wait

TOPOLOGY = Path(__file__).with_name("web.yaml")
LIVE = 2.0  # seconds from the store holding a change to the page showing it


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


@pytest.fixture(scope="module")
def api(lab):
    with serving(lab) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(api, browser):
    base, tokens = api
    browser.get(f"{base}/#token={tokens['admin']}")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "live")
    return browser


# The page redraws its SVG on every update: an element found may be gone when next touched
# (stale), so the tests read the DOM in one script, or retry.
def attr(page, css: str, name: str) -> str | None:
    return page.execute_script("const e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);", css, name)


def texts(page, css: str, data: str = "") -> list[str]:
    """Each matching element's text (or its data-* attribute `data`), read at one instant."""
    return page.execute_script("return [...document.querySelectorAll(arguments[0])].map(e => arguments[1] ? "
                               "e.dataset[arguments[1]] : (e.innerText ?? e.textContent))", css, data)


def click(page, css: str) -> None:
    for _ in range(5):
        try:
            return page.find_element(By.CSS_SELECTOR, css).click()
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{css} kept being redrawn under the click")


def within(page, seconds: float, what: str, pred):
    WebDriverWait(page, seconds, poll_frequency=0.02, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: pred(d), f"the page did not show {what} within {seconds} s")


def test_the_page_shows_every_node_of_the_lab(lab, page):
    names, labels = set(texts(page, "g.node", "name")), set(texts(page, "g.node text"))
    every = {"pn1", "pn2", "r", "h1", "h2", "h3", "a1", "g1", "va", "vb", "T", "vg", "gr1", "gr2"}
    assert every <= names and every <= labels, every - names
    assert set(texts(page, "#legend span")) == {"acme", "globex"}
    assert page.find_element(By.ID, "status").text.startswith("live")
    assert not any(e["level"] == "SEVERE" and "favicon" not in e["message"] for e in page.get_log("browser"))
    for h in ("h1", "h2", "h3"):
        wait(lambda: attr(page, f'g.node[data-id="host:{h}"]', "data-state") == "up", 5, f"{h} shown up")
    link = 'g.vlink[data-name="gl"]'
    assert (attr(page, link, "data-guarantee"), attr(page, link, "data-limit")) == ("5000000", "20000000")
    assert "limit 20 Mbit/s" in texts(page, link)[0]


def test_a_host_shows_its_tables_in_the_seeds_three_columns(page):
    click(page, 'g.node[data-id="host:h1"]')
    within(page, 5, "h1's tables", lambda d: d.find_elements(By.CSS_SELECTOR, '#details h3.vn-table[data-vn="a1"]'))
    text = page.find_element(By.ID, "details").text
    assert "Destination Addressing function Address to use" in text
    assert "Unicast va" in text and "No modification" in text and "Encapsulate (VXLAN)" in text  # vb is behind r


def test_a_vn_shows_its_members_and_bum_mode(page):
    click(page, 'g.node[data-id="vn:g1"]')
    text = page.find_element(By.ID, "details").text
    assert "head-end replication" in text and "VR gr1" in text and "vg" in text
    click(page, 'g.node[data-id="vn:a1"]')
    text = page.find_element(By.ID, "details").text
    assert "multicast group" in text and "T" in text.split()


def test_a_link_shows_guarantee_limit_and_live_rate(lab, page):
    click(page, 'g.vlink[data-name="gl"] text')
    text = page.find_element(By.ID, "details").text
    assert "5 Mbit/s" in text and "20 Mbit/s" in text
    within(page, 5, "gl's live rate on h2 and h3", lambda d: {r.split()[0] for r in texts(d, "#live-rate tbody tr")} == {"h2", "h3"})
    # gr1 pings gr2 across the link (~1 Mbit/s): the rate leaving h2 in gl's class moves off zero
    pinger = lab.popen("gr1", "ping", "-q", "-i0.01", "-s1200", "-c500", "-W1", "10.255.9.2", stdout=subprocess.DEVNULL)
    try:
        within(page, 6, "a rate on gl leaving h2", lambda d: any(
            r.split()[0] == "h2" and r.split()[1] != "0" for r in texts(d, "#live-rate tbody tr")))
    finally:
        pinger.kill()  # the PID we started
        pinger.wait()
    shown = next(r for r in texts(page, "#live-rate tbody tr") if r.startswith("h2"))
    assert "bit/s" in shown, shown


def test_an_attach_shows_within_2_s(lab, page):
    """T is detached by the operator and attaches again by itself (a new session): from the
    moment the store holds the new session, the page shows it within 2 s."""
    t = lab.mac("T")
    wait(lambda: t in lab.endpoints(), 15, "T attached")
    old = lab.endpoints()[t]["session"]
    within(page, LIVE, "T's first session", lambda d: d.find_elements(By.CSS_SELECTOR, f'#endpoints tr[data-mac="{t}"][data-session="{old}"]'))
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "detach", t, "--lab", lab.name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wait(lambda: lab.endpoints().get(t, {}).get("session") not in (None, old), 15, "T's new session", every=0.01)
    attached = time.monotonic()
    new = lab.endpoints()[t]["session"]
    within(page, LIVE, "T's new session", lambda d: d.find_elements(By.CSS_SELECTOR, f'#endpoints tr[data-mac="{t}"][data-session="{new}"]')
           and str(new) in attr(d, 'g.node[data-id="vm:T"]', "data-sessions").split(","))
    print(f"attach shown {time.monotonic() - attached:.3f} s after the store held it")
    assert time.monotonic() - attached < LIVE
    assert attr(page, 'g.node[data-id="vm:T"]', "data-attached") == "true"
    row = texts(page, f'#endpoints tr[data-mac="{t}"]')[0]
    assert "alice" in row and "20 Mbit/s" in row  # RADIUS's grant: alice's rate


def test_a_link_set_shows_within_2_s(lab, page):
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "link", "set", "gl", "--limit", "12mbit", "--lab", lab.name],
                       capture_output=True, text=True)
    written = time.monotonic()  # the CLI returns once the store holds the change
    assert r.returncode == 0, r.stdout + r.stderr
    within(page, LIVE, "gl's new limit", lambda d: attr(d, 'g.vlink[data-name="gl"]', "data-limit") == "12000000")
    print(f"link set shown {time.monotonic() - written:.3f} s after the CLI wrote it")
    assert time.monotonic() - written < LIVE
    assert "limit 12 Mbit/s" in texts(page, 'g.vlink[data-name="gl"]')[0]


def test_a_tenants_token_shows_its_overlay_only(api, browser):
    base, tokens = api
    browser.get(f"{base}/#token={tokens['tenants']['globex']}")
    WebDriverWait(browser, 10).until(lambda d: "tenant globex" in d.find_element(By.ID, "scope").text)
    assert "#token" not in browser.current_url  # taken out of the address bar
    assert set(texts(browser, "g.node", "name")) == {"g1", "vg", "gr1", "gr2"}
    assert browser.find_element(By.CSS_SELECTOR, "#endpoints tbody").text == "none"
