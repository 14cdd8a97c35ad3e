"""`seqbench report`: the artefacts, their numbers, escaping, and the page in a real browser."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from seqbench.harness.records import iter_records
from seqbench.harness.report.build import build_report
from seqbench.harness.report.intervals import accuracy_ci
from tests.chromium import find_chromium, load_page
from tests.report_fixtures import profile_record, profile_sweep, quick_runs, run_record, write_runs

EVIL_ARCH = "<script>alert(1)</script>"
EVIL_REASON = "<img src=x onerror=alert(2)> | broke"


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """Runs over two lengths, two widths, two lrs and two seeds, a full profile sweep, failures
    and hostile strings from a plugin; the report built once for every test below."""
    folder = tmp_path_factory.mktemp("full")
    records = quick_runs(
        archs=("mha", "gqa", "mamba", "lru", "mha-moe"),
        tasks=("mqar", "induction"),
        lengths=(64, 128),
        widths=(32, 64),
    )
    records.append(run_record(EVIL_ARCH, "mqar", seed=0))
    records.append(run_record(EVIL_ARCH, "mqar", seed=1, status="failed", reason=EVIL_REASON))
    records.append(profile_record("train", EVIL_ARCH, 512, status="failed", reason=EVIL_REASON))
    write_runs(folder, records + profile_sweep())
    (folder / "figures").mkdir()
    (folder / "figures" / "stale.png").write_bytes(b"not a figure of this build")
    build_report(folder)
    return folder


def pngs(folder: Path) -> list[Path]:
    return sorted((folder / "figures").glob("*.png"))


def test_artefacts_and_tables(full):
    for name in ("report.md", "report.html", "runs.csv", "profile.csv"):
        assert (full / name).stat().st_size > 0, name
    names = {p.stem for p in pngs(full)}
    assert "stale" not in names  # a rebuild never leaves a figure of an older build behind
    assert {
        "accuracy_vs_seq_len",
        "accuracy_vs_d_model",
        "length_extrapolation",
        "time_vs_length",
        "memory_vs_length",
        "state_vs_context",
        "throughput",
        "flops_per_token",
        "moe_expert_load",
    } <= names
    rows = list(csv.DictReader((full / "runs.csv").open()))
    runs = [r for r in iter_records(full) if r["kind"] == "run"]
    assert len(rows) == len(runs)
    assert {r["run_id"] for r in rows} == {r["run_id"] for r in runs}
    setup = (full / "report.md").read_text().split("## Setup")[1]  # last: results lead
    assert "profile points (plus 1 scaling fits the profiler derived from them)" in setup
    assert "| profile fit | 1 | 0 | 0 | 0 | 0 | 1 |" in setup
    points = [r for r in iter_records(full) if r["kind"] == "profile"]
    assert len(list(csv.DictReader((full / "profile.csv").open()))) == len(points) - 1
    picked = [r for r in rows if r["lr_picked"] == "True"]
    assert picked and all(r["lr"] == "0.003" for r in picked if r["arch"] != EVIL_ARCH)


def test_figures_are_not_blank(full):
    markdown = (full / "report.md").read_text()
    for path in pngs(full):
        image = mpimg.imread(path)[..., :3]  # (H, W, 3) in [0, 1]
        assert image.shape[0] > 100 and image.shape[1] > 100, path.name
        assert image.std() > 0.05, path.name
        assert (image.min(axis=-1) < 0.9).mean() > 0.01, path.name  # some ink, not all white
        assert f"(figures/{path.name})" in markdown


def test_leaderboard_numbers_come_from_the_records(full):
    """mha on mqar at L=64, d=64: the row shows the mean and accuracy interval over the picked
    lr's seeds."""
    chosen = [
        r["metrics"]["test"]["64"]["accuracy"]
        for r in iter_records(full)
        if r["kind"] == "run"
        and r["status"] == "ok"
        and (
            r["spec"]["arch"],
            r["spec"]["task"],
            r["spec"]["seq_len"],
            r["spec"]["d_model"],
            r["spec"]["lr"],
        )
        == ("mha", "mqar", 64, 64, 3e-3)
    ]
    assert len(chosen) == 2
    expected = accuracy_ci(chosen, [None, None], [512, 512]).format()  # 512 test sequences
    expected = expected.replace("[", "\\[").replace("]", "\\]")  # as Markdown escapes it
    table = (full / "report.md").read_text().split("### mqar")[1].split("###")[0]
    assert "| architecture | train length | width | lr (of tried) |" in table
    assert re.search(
        rf"\| mha \| 64 \| 64 \| 0\.003 \(of 2\) \| 2/2 \| [0-9.]+ \| {re.escape(expected)} \|",
        table,
    )


def test_claims_verdicts_on_a_profile_that_follows_the_textbook(full):
    """The fixture's profile follows the textbook laws, so every profile claim holds (the
    quality claim depends on seed noise; tests/test_report_claims.py pins it down)."""
    claims = (full / "report.md").read_text().split("## Claims")[1].split("Rules:")[0]
    verdicts = re.findall(r"\| (supported|contradicted|not measured) \|$", claims, re.M)
    assert verdicts[:8] == ["supported"] * 8, claims
    assert "mqar, L=128, d=64: mha" in claims.splitlines()[-2]


def test_failures_list_every_run_not_ok(full):
    failures = (full / "report.md").read_text().split("## Failures")[1]
    bad = [r for r in iter_records(full) if r["status"] != "ok"]
    assert f"{len(bad)} of" in failures
    for record in bad:
        assert record["run_id"] in failures and record["status"] in failures
    assert "non-finite loss at step 37" in failures


def test_spec_and_plugin_strings_are_escaped(full):
    html = (full / "report.html").read_text()
    assert "<script" not in html.lower() and "onerror=" not in html.replace("onerror=alert", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    markdown = (full / "report.md").read_text()
    assert re.search(r"(?<!\\)[<>]", markdown) is None  # no unescaped angle bracket at all
    assert "\\<script\\>alert(1)\\</script\\>" in markdown


def test_html_is_self_contained(full):
    html = (full / "report.html").read_text()
    sources = re.findall(r'(?:src|href)="([^"#][^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert html.count("<figure") == len(pngs(full))
    assert "Content-Security-Policy" in html


def test_report_renders_in_headless_chromium(full):
    binary = find_chromium()
    if binary is None:
        if os.environ.get("SEQBENCH_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (SEQBENCH_REQUIRE_CHROMIUM) but not installed")
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does)")
    page = load_page(binary, full / "report.html")
    assert page.errors == []
    figures = page.probe["figures"]
    assert len(figures) == len(pngs(full))
    for figure in figures:
        assert figure["complete"] and min(figure["natural"]) > 0, figure
        assert figure["width"] > 0 and figure["height"] > 0, figure
    assert page.probe["scripts"] == 0
    assert EVIL_ARCH in page.probe["text"]  # shown as text, not run


def test_chromium_probe_sees_errors_and_broken_images(tmp_path):
    """The browser check itself can fail: a console error, an exception and a broken image."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does)")
    page_path = tmp_path / "bad.html"
    page_path.write_text(
        '<!DOCTYPE html><html><body><script>console.error("boom"); missing();</script>'
        '<figure id="f"><img src="data:image/png;base64,AAAA"></figure></body></html>'
    )
    page = load_page(binary, page_path)
    assert any("boom" in e for e in page.errors) and any("exception" in e for e in page.errors)
    assert page.probe["figures"][0]["natural"] == [0, 0]


def test_skipped_figures_and_single_seeds_say_why(tmp_path):
    records = quick_runs(archs=("mha", "lru"), tasks=("mqar",), lrs=(3e-3,))
    records = [r for r in records if not (r["spec"]["arch"] == "lru" and r["spec"]["seed"] == 1)]
    records.append(run_record("lru", "mqar", seed=1, status="failed", reason="ValueError: x"))
    write_runs(tmp_path, records)
    build_report(tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert (
        "**Accuracy vs training length** — not drawn: the runs never vary the training length"
        in markdown
    )
    assert "**Length extrapolation** — not drawn: no run was tested beyond" in markdown
    assert "**Training time vs length** — not drawn: no profile records" in markdown
    assert re.search(r"\| lru \| 0\.003 \(of 2\) \| 1/2 \| [0-9.]+ \| [0-9.]+ \(n=1\) \|", markdown)
    assert "| mamba | 0.01 (of 1) | 0/1 | – | – | – |" in markdown
    claims = markdown.split("## Claims")[1]
    assert claims.count("| not measured |") == 9  # no profile, no MoE, no GQA
    assert "needs decode-state records of an MHA and a GQA/MQA model" in markdown
    assert [p.name for p in pngs(tmp_path)] == ["learning_curves.png", "summary_heatmap.png"]


def test_profile_only_folder(tmp_path):
    write_runs(tmp_path, [profile_record("decode", "lru", L) for L in (256, 4096)])
    files = build_report(tmp_path)
    markdown = files.markdown.read_text()
    assert "No training runs in this folder (profile records only)." in markdown
    assert "**Accuracy vs training length** — not drawn: no ok training runs" in markdown
    assert {p.name for p in files.figures} == {"state_vs_context.png", "throughput.png"}
    assert list(csv.DictReader(files.runs_csv.open())) == []


def test_an_override_only_some_runs_carry_gets_its_own_leaderboard_rows():
    """The recall suite runs `based` plain and with `linear_attention.d_conv=0`: "not set" is a
    value of the override column, so the two are two rows, never averaged into one."""
    import pandas as pd

    from seqbench.harness.report.leaderboard import varying_columns

    frame = pd.DataFrame(
        {
            "arch": ["based"] * 4,
            "task": ["mqar"] * 4,
            "seq_len": [24] * 4,
            "set.linear_attention.d_conv": [None, None, 0.0, 0.0],
        }
    )
    frame["set.linear_attention.d_conv"] = frame["set.linear_attention.d_conv"].astype(float)
    assert varying_columns(frame) == ["set.linear_attention.d_conv"]
