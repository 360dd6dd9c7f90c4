"""The web console (issue 17) in a real browser: Debian's headless Chromium driven by
Selenium (WebDriver) against a real running platform (the API under uvicorn, a Celery
worker, PostgreSQL + pgvector, Redis). Sign in, upload by the page's own script, watch
the document go to COMPLETED, read its chunks with citations, search and see the
citation and the highlighted words, delete; a read-only key sees no button that would
fail. Screenshots of each page go to $COGEP_CONSOLE_SCREENSHOTS (docs/console/ for the
README) or the test's temporary folder.

The browser is installed by scripts/system-deps.sh (make test, CI); no test skips
without it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("redis_client")]

LAW = (
    "LEI DE TESTE\n\n"
    "Art. 1º As férias podem ser parceladas em até três etapas, desde que assim requeridas "
    "pelo servidor.\n\n"
    "Art. 2º O adicional de férias corresponde a um terço da remuneração do período."
)


# "art. 1º", or "arts. 1º a 2º" when both short articles share a chunk
CITES_ART_1 = re.compile(r"^arts?\. 1º")


DROP_FILES = """
const [nameA, textA, nameB, textB] = arguments;
const files = new DataTransfer();
files.items.add(new File([textA], nameA, {type: "text/plain"}));
files.items.add(new File([textB], nameB, {type: "text/plain"}));
const zone = document.getElementById("dropzone");
zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: files, bubbles: true, cancelable: true}));
zone.dispatchEvent(new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
"""


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        "--lang=pt-BR",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("COGEP_CONSOLE_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(driver: WebDriver, seconds: float = 30) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, seconds, poll_frequency=0.25)


def sign_in(driver: WebDriver, url: str, key: str) -> None:
    driver.get(f"{url}/console/")
    wait(driver).until(ec.presence_of_element_located((By.ID, "api_key")))
    assert driver.current_url.endswith("/console/entrar")  # no session: the sign-in form
    driver.find_element(By.ID, "api_key").send_keys(key, Keys.ENTER)
    wait(driver).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Visão geral"))


def screenshot(driver: WebDriver, folder: Path, name: str, width: int = 1280) -> None:
    """The whole page at this width (a phone's when narrow), through the DevTools
    protocol: the window of a headless browser does not grow past its screen."""
    metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics["height"] = max(800, min(height, 4000))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    driver.save_screenshot(str(folder / f"{name}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


async def test_sign_in_upload_watch_search_and_delete_in_a_real_browser(
    live_platform: str, keys: dict[str, str], browser: WebDriver, shots: Path, tmp_path: Path
) -> None:
    browser.get(f"{live_platform}/console/entrar")
    screenshot(browser, shots, "entrar")
    sign_in(browser, live_platform, keys["admin"])
    # keyboard: the first Tab reaches the skip link, which leads to the content
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"

    browser.find_element(By.LINK_TEXT, "Documentos").click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "up-files")))
    law = tmp_path / "lei-ferias.txt"
    law.write_text(LAW, encoding="utf-8")
    browser.find_element(By.ID, "up-collection").send_keys("rh")
    browser.find_element(By.ID, "up-files").send_keys(str(law))  # the page's script sends it
    wait(browser).until(
        ec.text_to_be_present_in_element((By.ID, "upload-log"), "lei-ferias.txt: enviado")
    )
    # the table polls while the document is in flight, until it is COMPLETED
    row = (By.XPATH, "//tbody[@id='rows']/tr[td/a[text()='lei-ferias.txt']]")
    wait(browser, 120).until(ec.text_to_be_present_in_element(row, "concluído"))
    screenshot(browser, shots, "documentos")
    screenshot(browser, shots, "documentos-celular", width=390)

    browser.find_element(By.LINK_TEXT, "lei-ferias.txt").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "lei-ferias.txt"))
    citations = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".chunk cite")]
    assert any(CITES_ART_1.match(c) for c in citations), citations
    assert (
        "parceladas em até três etapas"
        in browser.find_element(By.ID, "trechos").find_element(By.XPATH, "..").text
    )
    screenshot(browser, shots, "documento")

    browser.find_element(By.LINK_TEXT, "Busca").click()
    browser.find_element(By.ID, "q").send_keys("posso parcelar minhas férias?")
    Select(browser.find_element(By.ID, "s-colecao")).select_by_value("rh")
    browser.find_element(By.CSS_SELECTOR, "form[role=search] button").click()
    first = wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".results li")))
    assert CITES_ART_1.match(first.find_element(By.TAG_NAME, "cite").text)
    marked = [m.text.lower() for m in first.find_elements(By.TAG_NAME, "mark")]
    assert "férias" in marked and "parceladas" in marked, marked
    screenshot(browser, shots, "busca")

    browser.find_element(By.LINK_TEXT, "Visão geral").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "colecoes"), "Coleções"))
    assert "rh" in browser.find_element(By.CSS_SELECTOR, "table").text
    screenshot(browser, shots, "visao-geral")

    browser.find_element(By.LINK_TEXT, "Documentos").click()
    browser.find_element(By.LINK_TEXT, "lei-ferias.txt").click()
    browser.find_element(By.CSS_SELECTOR, "details.danger summary").click()
    browser.find_element(By.ID, "confirm-delete").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.CLASS_NAME, "notice"), "excluído"))
    assert "lei-ferias.txt" not in browser.find_element(By.ID, "rows").text


async def test_dropped_files_upload_and_a_read_only_key_sees_no_button_that_would_fail(
    live_platform: str, keys: dict[str, str], browser: WebDriver, tmp_path: Path
) -> None:
    sign_in(browser, live_platform, keys["admin"])
    browser.find_element(By.LINK_TEXT, "Documentos").click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "dropzone")))
    # two files dropped at once on the drop zone (the browser's own drop event, with
    # the files in its DataTransfer, as a person dragging them from a folder makes it)
    browser.execute_script(
        DROP_FILES,
        "ponto.txt",
        "Art. 1º O ponto é eletrônico em todas as unidades.",
        "horario.txt",
        "Art. 1º O horário de expediente é das 8h às 18h.",
    )
    for name in ("ponto.txt", "horario.txt"):
        row = (By.XPATH, f"//tbody[@id='rows']/tr[td/a[text()='{name}']]")
        wait(browser, 120).until(ec.text_to_be_present_in_element(row, "concluído"))
    log = browser.find_element(By.ID, "upload-log").text
    assert "ponto.txt: enviado" in log and "horario.txt: enviado" in log
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "api_key")))

    sign_in(browser, live_platform, keys["read"])
    browser.find_element(By.LINK_TEXT, "Documentos").click()
    wait(browser).until(ec.presence_of_element_located((By.ID, "rows")))
    assert browser.find_elements(By.ID, "upload") == []  # no upload without "ingest"
    browser.find_element(By.LINK_TEXT, "ponto.txt").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ponto.txt"))
    assert browser.find_elements(By.CSS_SELECTOR, "main form") == []  # no action at all
    assert browser.find_elements(By.ID, "meta") == []  # metadata shown, not editable
    assert "ponto é eletrônico" in browser.page_source
