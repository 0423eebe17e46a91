"""``fraudkeras train --data DIR|GLOB [--stream]`` end to end on a folder of
Parquet shards: the split's counts against polars and an independent
implementation of the documented row hash, the test PR-AUC against
scikit-learn on the saved model, ``evaluate`` on the run folder, a glob that
ends like the folder, and bad folders that end in one error line and leave
nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score

from fraudkeras.cli import main
from fraudkeras.data.schema import FEATURES, LABEL
from helpers import BACKEND, MEASUREMENTS

TRAIN_ARGS = ["--epochs", "2", "--batch-size", "128", "--seed", "7", "--quiet", "--no-report"]
SPLIT_SEED = 42  # TrainConfig's default split_seed
MASK = 2**64 - 1


def _train(data: str, out: Path, *extra: str) -> int:
    return main(["train", "--backend", BACKEND, "--data", data, "--out", str(out),
                 *TRAIN_ARGS, *extra])  # fmt: skip


def _row_part(position: int, seed: int = SPLIT_SEED) -> str:
    """The stratified streaming split of one row, from the documented splitmix64
    hash of its position, in Python integers (not the package's numpy version)."""
    z = (position + seed * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    u = ((z ^ (z >> 31)) >> 11) / 2**53
    return "train" if u < 0.7 else "validation" if u < 0.85 else "test"


@pytest.fixture(scope="module")
def table(shards: Path) -> pl.DataFrame:
    """The shards as polars reads them, in file order, with each row's split."""
    frame = pl.concat([pl.read_parquet(p) for p in sorted(shards.glob("*.parquet"))])
    return frame.with_columns(part=pl.Series([_row_part(i) for i in range(frame.height)]))


@pytest.fixture(scope="module")
def run(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stream-cli") / "run"
    assert _train(str(shards), out, "--stream") == 0
    return out


def test_split_counts_match_polars(run: Path, table: pl.DataFrame) -> None:
    data = json.loads((run / "data.json").read_text())
    assert data["stream"] and data["fingerprint"]["rows"] == table.height
    assert data["fingerprint"]["frauds"] == table[LABEL].sum()
    counts = table.group_by("part").agg(rows=pl.len(), frauds=pl.col(LABEL).sum())
    expected = {row["part"]: {"rows": row["rows"], "frauds": row["frauds"]}
                for row in counts.to_dicts()}  # fmt: skip
    assert {part: data["split"][part] for part in expected} == expected


def test_test_pr_auc_matches_scikit_learn_and_evaluate(
    capsys, run: Path, table: pl.DataFrame
) -> None:
    from fraudkeras.modeling.model import fraud_probabilities, load_model

    test = table.filter(pl.col("part") == "test")
    scores = fraud_probabilities(load_model(run / "model.keras"), test.select(FEATURES).to_numpy())
    reference = average_precision_score(test[LABEL].to_numpy(), scores)
    recorded = json.loads((run / "metrics.json").read_text())["test"]["pr_auc"]
    assert recorded == pytest.approx(reference, abs=1e-6)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--backend", BACKEND, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["data_matches"] and again["test"]["pr_auc"] == pytest.approx(recorded, abs=1e-6)


def test_a_glob_trains_like_its_folder(run: Path, shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "glob-run"
    assert _train(str(shards / "part-*.parquet"), out) == 0  # a glob streams without --stream
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (run, out)]
    same = [{k: v for k, v in m.items() if k not in MEASUREMENTS} for m in metrics]
    assert same[0] == same[1]
    splits = [json.loads((folder / "data.json").read_text())["split"] for folder in (run, out)]
    assert splits[0] == splits[1]


def _shards_with(bad: str, shards: Path, folder: Path) -> str:
    """A data argument that is wrong in the way ``bad`` names."""
    data = folder / "data"
    if bad == "empty folder":
        data.mkdir()
    elif bad == "no Parquet in folder":
        data.mkdir()
        (data / "notes.txt").write_text("not a table\n")
    elif bad == "glob matching nothing":
        return str(folder / "nothing-*.parquet")
    else:
        shutil.copytree(shards, data)
        last = sorted(data.glob("*.parquet"))[-1]
        if bad == "shard missing a column":
            pl.read_parquet(last).drop("V4").write_parquet(last)
        else:  # "shard not Parquet"
            last.write_bytes(np.random.default_rng(0).bytes(999))
    return str(data)


BAD = {
    "empty folder": "no Parquet files",
    "no Parquet in folder": "no Parquet files",
    "glob matching nothing": "no Parquet files",
    "shard missing a column": "missing column(s) V4",
    "shard not Parquet": "not a readable Parquet file",
}


@pytest.mark.parametrize("bad", BAD)
def test_bad_stream_input_is_one_line_and_leaves_nothing(
    capsys, shards: Path, tmp_path: Path, bad: str
) -> None:
    data = _shards_with(bad, shards, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _train(data, tmp_path / "run", "--stream") == 3  # DataError
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fraudkeras: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert BAD[bad] in lines[0] and Path(data).name in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run, no .partial
