"""index.html: one self-contained page with every figure, the summary table (a row per cell), each sweep's settings
and the provenance; opened in headless Chromium where Debian's chromium, chromium-driver and selenium are installed."""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import pytest
from tests.report_store import fill_store

from deep import provenance
from deep.report import load_results, write_report
from deep.report.results import cells
from deep.runs import task_folders

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """A synthetic store of three protocols at four densities and two seeds (each run with a provenance), reported."""
    root = tmp_path_factory.mktemp("runs")
    fill_store(root, protocols=("random", "el2n", "random+drop"), seeds=(0, 1), densities=(0.2, 0.4, 0.6, 0.8))
    for task in task_folders(root / "final"):
        provenance.write(task, provenance.now(), "cpu")
    out = tmp_path_factory.mktemp("report")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        written = write_report(root, out)
    return root, out, written


def test_the_page_links_every_figure_relatively_and_needs_no_network(page: tuple[Path, Path, list[Path]]) -> None:
    root, out, written = page
    text = (out / "index.html").read_text()
    pngs = {p.name for p in written if p.suffix == ".png"}
    assert pngs and set(re.findall(r'<img src="([^"]+)"', text)) == pngs
    assert not re.search(r'(src|href)="(https?:|/|file:)', text)  # relative links only
    assert "<script" not in text
    rows = load_results(root)
    assert text.count("</tr>", text.index('id="summary"'), text.index("</table>", text.index('id="summary"'))) \
        == len(cells(rows)) + 1  # the header and a row per cell
    assert "Settings of each sweep" in text and "train.epochs" in text and "Provenance" in text
    assert f"code: {provenance.code_label(provenance.read(task_folders(root / 'final')[0]))}" in text


@pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
def test_the_page_in_a_real_browser(page: tuple[Path, Path, list[Path]], tmp_path: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install '.[dev]')")
    root, out, written = page
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,2000"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        browser.get((out / "index.html").as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, "
            "i.getBoundingClientRect().width <= i.closest('figure').getBoundingClientRect().width + 1])")
        assert sorted(src for src, _, _, _ in images) == sorted(p.name for p in written if p.suffix == ".png")
        assert all(complete and width > 0 for _, complete, width, _ in images), images
        assert all(fits for _, _, _, fits in images), images  # scaled into its figure, never over the next one
        body_rows = browser.execute_script("return document.querySelectorAll('#summary tbody tr').length")
        assert body_rows == len(cells(load_results(root)))
        shot = Path(os.environ.get("DROP_SCREENSHOT", tmp_path / "index.png"))  # docs/report_index.png was made so
        browser.set_window_size(1280, 1400)
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
