"""Worker processes: out-of-memory and over-budget points are recorded and the sweep goes on."""

from __future__ import annotations

from seqbench.harness.profile.points import PointOptions, make_spec
from seqbench.harness.profile.runner import Job, predicted_over_budget, run_jobs

TINY = {"d_model": 32, "n_layers": 1}
OPTS = PointOptions(repeats=1)


def test_oom_point_is_recorded_longer_ones_skipped_and_other_series_run() -> None:
    jobs = [
        Job(make_spec("train", "mha", TINY, 1024, OPTS), 60, max_memory_bytes=2**20),
        Job(make_spec("train", "mha", TINY, 2048, OPTS), 60, max_memory_bytes=2**20),
        Job(make_spec("train", "gqa", TINY, 32, OPTS), 60),
    ]
    results = [result for _, result in run_jobs(jobs, fresh_each=True)]
    assert [r["status"] for r in results] == ["oom", "failed", "ok"]
    assert "memory cap" in results[0]["reason"]
    assert results[1]["reason"].startswith("skipped")
    assert [r["run_id"] for r in results] == [j.run_id for j in jobs]
    assert results[2]["metrics"]["memory_bytes"]["cpu_rss_delta"] is not None


def test_over_budget_point_is_killed_and_a_new_worker_takes_the_rest() -> None:
    jobs = [
        # Mamba's scan loops over time steps in Python: 16k steps take seconds even on meta
        Job(make_spec("counted", "mamba", TINY, 16384, OPTS), 0.5),
        Job(make_spec("counted", "mamba", TINY, 32768, OPTS), 60),
        Job(make_spec("counted", "gqa", TINY, 64, OPTS), 60),
    ]
    results = {job.run_id: result for job, result in run_jobs(jobs, fresh_each=False)}
    first, second, third = (results[j.run_id] for j in jobs)
    assert first["status"] == "failed" and "time budget" in first["reason"]
    assert second["status"] == "failed" and second["reason"].startswith("skipped")
    assert third["status"] == "ok" and third["metrics"]["method"] == "counted-meta"


def test_a_point_predicted_over_budget_is_recorded_without_running() -> None:
    short = Job(make_spec("counted", "mha", TINY, 64, OPTS), 60)
    huge = Job(make_spec("counted", "mha", TINY, 64 * 10**7, OPTS), 1.0)
    results = [result for _, result in run_jobs([short, huge], fresh_each=False)]
    assert results[0]["status"] == "ok"
    assert results[1]["status"] == "failed"
    assert results[1]["reason"].startswith("predicted over the per-point time budget")
    assert predicted_over_budget((64, 0.5), huge) is not None
    assert predicted_over_budget((64, 0.5), short) is None
    assert predicted_over_budget(None, huge) is None
