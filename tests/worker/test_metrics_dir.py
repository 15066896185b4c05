"""The worker's metrics directory (Dramatiq's ``dramatiq_prom_db``): emptied once per ``dramatiq``
run, by whichever of its worker processes gets there first, never under a sibling's feet."""

from __future__ import annotations

import pytest

from tribe_worker.metrics_dir import prepare_metrics_dir, use_dramatiq_metrics_dir


def test_the_first_process_of_a_run_removes_the_files_of_earlier_runs(tmp_path):
    (tmp_path / "counter_101.db").write_bytes(b"old")
    (tmp_path / "histogram_102.db").write_bytes(b"old")
    (tmp_path / "unrelated.txt").write_text("kept")

    assert prepare_metrics_dir(tmp_path, "run-b")

    assert sorted(p.name for p in tmp_path.glob("*.db")) == []
    assert (tmp_path / "unrelated.txt").exists()


def test_the_other_processes_of_the_same_run_keep_what_the_first_already_wrote(tmp_path):
    assert prepare_metrics_dir(tmp_path, "run-b")
    (tmp_path / "counter_201.db").write_bytes(b"first process")

    assert not prepare_metrics_dir(tmp_path, "run-b")

    assert (tmp_path / "counter_201.db").exists()


def test_the_next_run_starts_empty_again(tmp_path):
    prepare_metrics_dir(tmp_path, "run-b")
    (tmp_path / "counter_201.db").write_bytes(b"run b")

    assert prepare_metrics_dir(tmp_path, "run-c")

    assert not (tmp_path / "counter_201.db").exists()


def test_it_refuses_once_prometheus_client_is_imported():
    # This test process imported prometheus-client without a multiprocess directory: pointing
    # it at one now would silently keep every metric out of the exposition.
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        use_dramatiq_metrics_dir("run-x")
