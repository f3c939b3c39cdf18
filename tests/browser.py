"""Chromium from Debian's packages, driven by Selenium through Debian's chromedriver: no browser or driver is
downloaded (the paths are given, so Selenium Manager is never asked)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
AXE = Path(__file__).resolve().parent.parent / "web" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = (1280, 900)
PHONE = (390, 844)


def chromium(size: tuple[int, int] = DESKTOP) -> webdriver.Chrome:
    """A new headless Chromium: a browser of its own (profile, memory, storage), as a second person's would be."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: `make system-deps WITH_BROWSER=1` installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in a container, Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--lang=en-GB",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    # Console messages, CSP violations among them, for the tests to read.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


class Page:
    """One person's browser, read as that person would: by labels, roles and text."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, timeout: float = 10.0) -> None:
        self.driver = driver
        self.base_url = base_url
        self.timeout = timeout

    def wait(self, timeout: float | None = None) -> WebDriverWait[webdriver.Chrome]:
        # A stale element is one the page has just drawn anew: look again.
        return WebDriverWait(
            self.driver,
            timeout or self.timeout,
            poll_frequency=0.05,
            ignored_exceptions=[StaleElementReferenceException],
        )

    def open(self, path: str = "/") -> None:
        self.driver.get(self.base_url + path)

    def go(self, hash_route: str) -> None:
        """Within the page (no reload: the sign-in lives in its memory)."""
        self.driver.execute_script("location.hash = arguments[0]", hash_route)
        self.wait().until(lambda d: d.execute_script("return location.hash") == hash_route)

    def find(self, css: str, timeout: float | None = None) -> WebElement:
        found: WebElement = self.until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)), f"no {css}", timeout
        )
        return found

    def button(self, text: str, within: WebElement | None = None, timeout: float | None = None) -> WebElement:
        root = within
        xpath = f".//button[normalize-space()={json.dumps(text)}]"

        def clickable(driver: webdriver.Chrome) -> WebElement | bool:
            for element in (root or driver).find_elements(By.XPATH, xpath):
                if element.is_displayed() and element.is_enabled():
                    return element
            return False

        found: WebElement = self.until(clickable, f"no button {text!r}", timeout)
        return found

    def press(self, text: str, within_css: str = "body", timeout: float | None = None) -> None:
        """Clicks the button, looking it up again if the page redraws it meanwhile (as live parts do)."""
        xpath = f".//button[normalize-space()={json.dumps(text)}]"

        def clicked(driver: webdriver.Chrome) -> bool:
            for root in driver.find_elements(By.CSS_SELECTOR, within_css):
                for element in root.find_elements(By.XPATH, xpath):
                    if element.is_displayed() and element.is_enabled():
                        element.click()
                        return True
            return False

        self.until(clicked, f"no button {text!r} in {within_css}", timeout)

    def field(self, label: str) -> WebElement:
        """The input a <label> with this text names."""
        xpath = f"//label[normalize-space()={json.dumps(label)}]"
        label_element = self.until(
            expected_conditions.presence_of_element_located((By.XPATH, xpath)), f"no label {label!r}"
        )
        return self.driver.find_element(By.ID, str(label_element.get_attribute("for")))

    def text_of(self, css: str) -> str:
        return str(self.find(css).text)

    def wait_for_text(self, css: str, text: str, timeout: float | None = None) -> WebElement:
        def has_text(driver: webdriver.Chrome) -> WebElement | bool:
            for element in driver.find_elements(By.CSS_SELECTOR, css):
                if text in element.text:
                    return element
            return False

        found: WebElement = self.until(has_text, f"no {css} with {text!r}", timeout)
        return found

    def until(self, condition: Any, what: str, timeout: float | None = None) -> Any:
        try:
            return self.wait(timeout).until(condition)
        except TimeoutException:
            raise AssertionError(f"{what} {self.state()}") from None

    def state(self) -> str:
        """Where the browser is and what it said, for a failure's message."""
        body = self.driver.find_element(By.TAG_NAME, "body").text[:1500]
        console = "\n".join(str(entry.get("message")) for entry in self.console())
        return f"at {self.driver.current_url}:\n--- page ---\n{body}\n--- console ---\n{console}"

    def sign_in(self, subject: str, role: str = "attendee") -> None:
        """Through the issuer's sign-in page and back, as a person does."""
        self.open("/")
        self.button("Sign in").click()
        self.field("Subject").send_keys(subject)
        self.driver.find_element(By.CSS_SELECTOR, f'input[name="role"][value="{role}"]').click()
        self.button("Sign in").click()
        self.wait_for_text("#who", f"Signed in as {subject}")

    def screenshot(self, directory: Path, name: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console(self) -> list[dict[str, Any]]:
        return list(self.driver.get_log("browser"))

    def axe_violations(self) -> list[dict[str, Any]]:
        """What axe-core (the npm package the web build pins) finds against WCAG 2 A and AA on the page now."""
        self.driver.execute_script(AXE.read_text())
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
            ".then(r => done({passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))}), e => done({passes: 0, error: String(e)}));"
        )
        assert result["passes"] > 0, f"axe-core checked nothing: {result}"
        return list(result["violations"])
