"""Errors of the user's input or environment leave the CLI as one line with exit status 2;
a closed output pipe exits quietly."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from linecube.cli import main
from linecube.store import Store, StoreMeta


def one_line(capsys, argv, *expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:7"])
def test_missing_gpu_is_one_line(tmp_path, capsys, device):
    one_line(capsys, ["embed", "--model", str(tmp_path / "m.safetensors"), "--store",
                      str(tmp_path), "--out", str(tmp_path / "a"), "--device", device],
             f"device '{device}': no CUDA device is available")


def test_unknown_device_is_one_line(tmp_path, capsys):
    one_line(capsys, ["embed", "--model", "m", "--store", "s", "--out", "a", "--device",
                      "tpu:0"], "device 'tpu:0'")


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_checkpoint_is_refused_before_the_run_is_touched(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with open(run / "checkpoints" / "last.ckpt", "wb") as fh:
        pickle.dump({"state_dict": Payload()}, fh, protocol=2)
    (run / "config.json").write_text('{"saved": true}')
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    one_line(capsys, ["train", "--store", str(tmp_path / "store"), "--out", str(run),
                      "--resume", "--config", "demo"],
             "last.ckpt: not a checkpoint linecube can load safely")
    assert "pickled code ran" not in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_bad_override_is_blamed_on_the_override_not_the_file(tmp_path, capsys):
    (tmp_path / "pre.toml").write_text("size = 16\n")
    one_line(capsys, ["ingest", str(tmp_path), "--out", str(tmp_path / "s"), "--config",
                      str(tmp_path / "pre.toml"), "-o", "sise=16"], "-o: key 'sise': unknown key")
    (tmp_path / "bad.toml").write_text("sise = 16\n")
    one_line(capsys, ["ingest", str(tmp_path), "--out", str(tmp_path / "s"), "--config",
                      str(tmp_path / "bad.toml"), "-o", "size=16"],
             f"{tmp_path / 'bad.toml'}: key 'sise': unknown key")
    one_line(capsys, ["train", "--store", str(tmp_path), "--out", str(tmp_path / "r"),
                      "--config", "demo", "-o", "optim.lr=-1"], "-o: key 'optim.lr'")


def test_os_error_is_one_line(tmp_path, capsys):
    (tmp_path / "store").mkdir()
    os.symlink(tmp_path / "store" / "store.json", tmp_path / "store" / "store.json")
    one_line(capsys, ["inspect", str(tmp_path / "store")], "store.json")


def test_broken_pipe_exits_quietly(tmp_path):
    store = Store.create(tmp_path / "store", StoreMeta(lines=["Ha-6564"], size=8, preprocess={}))
    shape = (1, 1, 8, 8)
    store.append({"x": np.ones(shape, "f4"), "weight": np.ones(shape, "u1"),
                  "ivar": np.ones(shape, "f4")}, [{"plateifu": "8485-1901"}])
    n = 20000  # far more output than a pipe holds
    store.write_rejections(pd.DataFrame({"file": [f"f{i}.fits" for i in range(n)],
                                         "reason": ["not FITS"] * n, "kind": ["unreadable"] * n}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "linecube", "inspect",
                             str(tmp_path / "store")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout.readline().startswith(b"store")
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == "", err


def test_config_json_is_written_only_after_the_config_validates(tmp_path, capsys):
    run = tmp_path / "run"
    one_line(capsys, ["train", "--store", str(tmp_path / "nostore"), "--out", str(run),
                      "--config", "demo", "-o", "data.batch_size=0"], "data.batch_size")
    assert not (run / "config.json").exists()
