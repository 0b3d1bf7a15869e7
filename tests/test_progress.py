import io

import pytest
from tqdm.std import tqdm as std_tqdm

from linecube import progress
from linecube.progress import LineProgress, format_duration, is_terminal, progress_bar


@pytest.fixture(autouse=True)
def every_step(monkeypatch):
    """A line at every step, however fast the updates come (the tests run in microseconds)."""
    monkeypatch.setattr(progress, "MIN_INTERVAL_S", 0.0)


@pytest.fixture
def lines(capsys):
    """The newline-terminated lines written to stderr so far (stderr is not a terminal here)."""
    def read() -> list[str]:
        err = capsys.readouterr().err
        assert "\r" not in err
        return err.splitlines()
    return read


def test_a_log_file_gets_a_line_every_few_per_cent(lines):
    bar = progress_bar(1000, "ingest", "file")
    assert isinstance(bar, LineProgress)
    for _ in range(1000):
        bar.update()
    bar.close()
    out = lines()
    assert 20 <= len(out) <= 25
    assert out[0].startswith("ingest:   0% (0/1000 file)")
    assert out[-1].startswith("ingest: 100% (1000/1000 file)")
    assert "left" in out[len(out) // 2] and "left" not in out[-1]


def test_a_fast_stage_writes_only_its_first_and_last_line(lines, monkeypatch):
    monkeypatch.setattr(progress, "MIN_INTERVAL_S", 3600.0)
    with progress_bar(1000, "simulate", "obs") as bar:
        for _ in range(1000):
            bar.update()
    out = lines()
    assert len(out) == 2
    assert out[0].startswith("simulate:   0%") and out[1].startswith("simulate: 100%")


def test_close_writes_the_final_count_once(lines):
    with progress_bar(7, "x") as bar:
        bar.update(3)
        bar.update(2)
    bar.close()
    out = lines()
    assert [line.split(",")[0] for line in out] == ["x:   0% (0/7 it)", "x:  43% (3/7 it)",
                                                     "x:  71% (5/7 it)"]


def test_iterating_yields_the_items_and_ends_at_100_percent(lines):
    assert list(progress_bar(desc="whan", iterable=range(200))) == list(range(200))
    out = lines()
    assert len(out) == 21 and out[-1].startswith("whan: 100% (200/200 it)")


def test_a_resumed_job_starts_at_initial_and_postfix_is_shown(lines):
    bar = progress_bar(100, "embed", "galaxy", initial=40)
    bar.set_postfix(loss=0.123456, name="a")
    bar.update(60)
    bar.close()
    out = lines()
    assert out[0].startswith("embed:  40% (40/100 galaxy)")
    assert out[-1].startswith("embed: 100% (100/100 galaxy)")
    assert out[-1].endswith("loss=0.1235, name=a")


def test_without_a_total_lines_come_from_the_heartbeat(lines, monkeypatch):
    bar = progress_bar(desc="download")
    for _ in range(50):
        bar.update()
    bar.close()
    assert [line.split(",")[0] for line in lines()] == ["download: 0 it", "download: 50 it"]
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.0)
    bar = progress_bar(1000, "slow")
    bar.update()
    bar.update()
    assert len(lines()) == 3  # start + one per update


def test_terminal_and_disabled_bars_are_tqdm(monkeypatch, capsys):
    bar = progress_bar(10, "x", disable=True)
    assert isinstance(bar, std_tqdm)
    bar.update(10)
    bar.close()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "is_terminal", lambda stream: True)
    bar = progress_bar(10, "x", "obs", initial=2)
    assert isinstance(bar, std_tqdm) and bar.n == 2 and bar.unit == "obs"
    bar.close()


def test_is_terminal_and_format_duration():
    assert not is_terminal(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)
    assert format_duration(3725.9) == "1:02:05"
    assert format_duration(0) == "0:00:00"


def test_line_progress_without_an_iterable_cannot_be_iterated():
    bar = LineProgress(total=3, file=io.StringIO())
    with pytest.raises(TypeError, match="without an iterable"):
        list(bar)
