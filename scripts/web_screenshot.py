"""The web view of the Figure 3 datacenter (examples/datacenter.yaml, lab fig3), as docs/web.md
shows it: brings the lab up, serves `tenet api` on it, opens the page in headless Chromium (the
Debian package and its driver: nothing downloaded), selects host5 (its tables beside the graph),
saves docs/img/web-view.png and takes everything down again. Needs root (a lab); run it under
the lab lock:

    flock /tmp/tenet-lab.lock sudo .venv/bin/python scripts/web_screenshot.py [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tenet.lab.lab import Lab

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def until(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def shoot(lab: Lab, out: Path, select: str) -> None:
    port = free_port()
    api = subprocess.Popen([sys.executable, "-m", "tenet.cli.main", "api", "--lab", lab.name, "--listen", f"127.0.0.1:{port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        tokens = lab.record.dir / "api-tokens.json"
        until(lambda: api.poll() is None and tokens.exists() and serving(port), 20, "the API")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1680,860", "--hide-scrollbars"):
            options.add_argument(arg)
        browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            browser.get(f"http://127.0.0.1:{port}/#token={json.loads(tokens.read_text())['admin']}")
            WebDriverWait(browser, 15).until(lambda d: all(g.get_attribute("data-state") == "up" for g in d.find_elements(
                By.CSS_SELECTOR, "g.node.kind-host")) and d.find_elements(By.CSS_SELECTOR, "g.node.kind-host"))
            browser.find_element(By.CSS_SELECTOR, f'g.node[data-id="{select}"]').click()
            WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#details h3.vn-table"))
            time.sleep(0.3)
            out.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(out))
        finally:
            browser.quit()
    finally:
        api.terminate()  # the PID we started
        api.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "web-view.png")
    p.add_argument("--select", default="host:host5", help="the node whose details show beside the graph")
    args = p.parse_args()
    with Lab.load(ROOT / "examples" / "datacenter.yaml") as lab:
        shoot(lab, args.out, args.select)
    print(f"{args.out}: {args.out.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
