"""config/ocr.lua on sample:page, and against the reference PP-OCR pipeline (rapidocr's own API).

The reference needs rapidocr's run-time dependencies (requirements/bench.txt, installed by
tools/setup_env.sh); the comparison is skipped where they are missing. bench/bench_ocr.py
prints the full comparison with timings (docs/performance.md).
"""

from __future__ import annotations

import logging
from types import ModuleType

import numpy as np
import pytest
from support import CONFIG_DIR, load_bench

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.frames import sample_image

UPRIGHT_LINE = "the markers are found at the two extreme parts of the"


def bench_module() -> ModuleType:
    return load_bench("bench_ocr")


@pytest.fixture(scope="module")
def page_result() -> dict:
    with Pipeline.from_config(CONFIG_DIR / "ocr.lua") as pipeline:
        result = pipeline.run(sample_image("page"), encoding="rgb8")
    return {name: outcome.value for name, outcome in result.outcomes.items()}


def test_an_upright_line_the_angle_classifier_turns_is_read_upright(page_result: dict) -> None:
    angles, scores = page_result["angle"]["angles"], page_result["angle"]["scores"]
    turned = [i for i, a in enumerate(angles) if a == 180]
    assert turned, "the classifier no longer turns a line of sample:page: the case this test covers is gone"
    i = turned[0]
    assert 0.9 < scores[i] < 0.95  # just above the 0.9 threshold, as rapidocr's classifier too
    line = page_result["rec"]["lines"][i]
    assert line["text"] == UPRIGHT_LINE and line["angle"] == 0 and line["score"] > 0.95


def test_ocr_reads_sample_page_at_least_as_well_as_rapidocr_on_the_same_models(page_result: dict) -> None:
    pytest.importorskip("pyclipper", reason="rapidocr's dependencies (requirements/bench.txt) are not installed")
    pytest.importorskip("shapely", reason="rapidocr's dependencies (requirements/bench.txt) are not installed")
    from rapidocr import RapidOCR

    bench = bench_module()
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    image = sample_image("page")
    reference = RapidOCR(params={"Global.log_level": "warning"})(np.ascontiguousarray(image[:, :, ::-1]))
    ref_texts = list(reference.txts)
    ours = [line["text"] for line in page_result["rec"]["lines"]]
    truth = bench.PAGE_TRUTH
    ours_acc = [bench.char_accuracy(bench.best_match(t, ours), t) for t in truth]
    ref_acc = [bench.char_accuracy(bench.best_match(t, ref_texts), t) for t in truth]
    assert len(ours) == len(ref_texts) == len(truth)
    assert all(a >= r - 0.05 for a, r in zip(ours_acc, ref_acc, strict=True)), (ours, ref_texts)
    assert np.mean(ours_acc) > np.mean(ref_acc)  # the reference turns the upright line 5 and misreads it
    assert UPRIGHT_LINE in ours and UPRIGHT_LINE not in ref_texts


def test_lines_of_a_page_turned_upside_down_are_still_read_turned() -> None:
    page = np.ascontiguousarray(sample_image("page")[::-1, ::-1])
    with Pipeline.from_config(CONFIG_DIR / "ocr.lua") as pipeline:
        lines = pipeline.run(page, encoding="rgb8").outcomes["rec"].value["lines"]
    turned = {line["text"] for line in lines if line["angle"] == 180}
    assert {UPRIGHT_LINE, "Region-based segmentation", "histogram of grey values:"} <= turned
