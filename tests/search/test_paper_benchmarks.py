"""The paper profile evaluates on the official code's benchmark ids, read in their layouts.

The Hub is out of reach here, so each benchmark is a local folder laid out as its Hub repository
is documented, read through the paper profile's column settings: ``Maxwell-Jia/AIME_2024`` one
Parquet file with capitalised columns and integer answers; ``yentinglin/aime_2025`` the default
config's ``data/train-*`` beside other folders of Parquet files (``part1``, ``part2``), which the
official ``load_dataset(id, split="train")`` does not read either.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from tracefactory.config import BenchmarkConfig
from tracefactory.datafiles import read_benchmark

ROOT = Path(__file__).resolve().parents[2]


def paper_benchmarks(section: str) -> dict[str, dict]:
    profile = yaml.safe_load((ROOT / "pipelines" / "paper.yaml").read_text())
    if section == "problems":
        entries = profile["problems"]["decontamination"]["benchmarks"]
    else:
        entries = profile[section]["benchmarks"]
    return {b["name"]: b for b in entries}


def test_the_paper_profile_uses_the_official_benchmark_ids():
    for section in ("problems", "evaluate"):
        benchmarks = paper_benchmarks(section)
        assert benchmarks["aime24"]["path"] == "Maxwell-Jia/AIME_2024"
        assert benchmarks["aime25"]["path"] == "yentinglin/aime_2025"
        assert benchmarks["hmmt_feb24"]["path"] == "MathArena/hmmt_feb_2024"
        assert benchmarks["hmmt_feb25"]["path"] == "MathArena/hmmt_feb_2025"
    assert paper_benchmarks("evaluate")["openr1_test"].get("path") is None  # the test split


def test_aime_2024_layout_capitalised_columns_and_integer_answers(tmp_path):
    folder = tmp_path / "AIME_2024"
    folder.mkdir()
    table = pa.table(
        {
            "ID": ["2024-I-1", "2024-II-4"],
            "Problem": ["Every morning Aya goes for a 9-kilometer-long walk ...", "Let x ..."],
            "Solution": ["...", "..."],
            "Answer": pa.array([204, 33], pa.int64()),
        }
    )
    pq.write_table(table, folder / "aime_2024_problems.parquet")
    path = str(folder / "aime_2024_problems.parquet")
    spec = {**paper_benchmarks("evaluate")["aime24"], "path": path}
    frame = read_benchmark(BenchmarkConfig(**spec))
    assert frame["answer"].to_list() == ["204", "33"]  # gold strings as the official str() sees
    assert frame["problem"][0].startswith("Every morning Aya")


def test_aime_2025_layout_reads_the_default_configs_files_only(tmp_path):
    folder = tmp_path / "aime_2025"
    for sub, rows in (("data", ["70", "588"]), ("part1", ["1"]), ("part2", ["2"])):
        (folder / sub).mkdir(parents=True)
        table = pa.table({"problem": [f"{sub} problem {a}" for a in rows], "answer": rows})
        pq.write_table(table, folder / sub / "train-00000-of-00001.parquet")
    spec = {
        **paper_benchmarks("evaluate")["aime25"],
        "path": str(folder / "data" / "train-*.parquet"),
    }
    frame = read_benchmark(BenchmarkConfig(**spec))
    assert frame["answer"].to_list() == ["70", "588"]
