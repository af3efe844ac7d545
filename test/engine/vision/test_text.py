"""Tests of the OCR ops of ``vp``: DB text regions, quad crops, rotate180, CTC decoding."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from skimage import data as skimage_data

from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.text import crop_quads, ctc_decode, rotate180, text_regions

#: scikit-image's sample frames (the module is untyped).
FRAMES: Any = skimage_data


def one_hot_logits(classes: list[int], num_classes: int, high: float = 10.0) -> NDArray[np.float32]:
    """Logits [1, T, C] whose best class at step t is ``classes[t]`` (0-based)."""
    logits = np.zeros((1, len(classes), num_classes), dtype=np.float32)
    logits[0, np.arange(len(classes)), classes] = high
    return logits


# --- ctc_decode ------------------------------------------------------------------------------


def test_ctc_decode_merges_repeats_drops_blanks_and_maps_the_extra_class_to_space() -> None:
    charset = ["a", "b", "c"]  # classes: 0 blank, 1 a, 2 b, 3 c, 4 space
    logits = one_hot_logits([1, 1, 0, 1, 2, 4, 3, 3, 0], 5)
    texts, scores = ctc_decode(logits, charset)
    assert texts == ["aab c"]
    expected = math.exp(10) / (math.exp(10) + 4)
    assert scores == [pytest.approx(expected, rel=1e-5)]


def test_ctc_decode_uses_probabilities_as_given_and_scores_their_mean() -> None:
    probs = np.full((1, 4, 3), 0.1, dtype=np.float32)
    best = [1, 0, 2, 2]
    probs[0, np.arange(4), best] = 0.8
    texts, scores = ctc_decode(probs, ["x", "y"])  # C == #charset + 1: no space class
    assert texts == ["xy"]
    assert scores == [pytest.approx(0.8)]


def test_ctc_decode_accepts_a_newline_separated_charset_like_the_model_metadata() -> None:
    texts, _ = ctc_decode(one_hot_logits([2, 0, 1], 4), "a\nb")
    assert texts == ["ba"]


def test_ctc_decode_decodes_each_batch_row_and_gives_empty_text_a_zero_score() -> None:
    logits = np.concatenate([one_hot_logits([1, 2], 3), one_hot_logits([0, 0], 3)])
    texts, scores = ctc_decode(logits, ["p", "q"])
    assert texts == ["pq", ""]
    assert scores[1] == 0.0


def test_ctc_decode_supports_a_blank_as_the_last_class() -> None:
    texts, _ = ctc_decode(one_hot_logits([0, 2, 1, 1], 3), ["m", "n"], -1)
    assert texts == ["mn"]


def test_ctc_decode_accepts_a_two_dimensional_sequence() -> None:
    texts, _ = ctc_decode(one_hot_logits([1], 3)[0], ["k", "l"])
    assert texts == ["k"]


def test_ctc_decode_rejects_a_charset_that_does_not_fit_the_classes() -> None:
    with pytest.raises(
        VisionOpError,
        match=r"ctc_decode: logits have 10 classes but charset has 3 entries \(expected 9 or 8\)",
    ):
        ctc_decode(np.zeros((1, 2, 10)), ["a", "b", "c"])


def test_ctc_decode_rejects_a_blank_out_of_range() -> None:
    with pytest.raises(VisionOpError, match=r"ctc_decode: blank must be in 1..3 or -3..-1, got 0"):
        ctc_decode(np.zeros((1, 2, 3)), ["a", "b"], 0)


def test_ctc_decode_rejects_a_charset_of_numbers() -> None:
    with pytest.raises(VisionOpError, match=r"ctc_decode: charset must be an array of strings"):
        ctc_decode(np.zeros((1, 2, 3)), [1, 2])


def test_ctc_decode_rejects_a_four_dimensional_tensor() -> None:
    with pytest.raises(VisionOpError, match=r"ctc_decode: logits must be \[N, T, C\] with C >= 2"):
        ctc_decode(np.zeros((1, 1, 2, 3)), ["a", "b"])


# --- text_regions ----------------------------------------------------------------------------


def probability_map(
    rects: list[tuple[int, int, int, int, float]], shape: tuple[int, int] = (100, 200)
) -> NDArray[np.float32]:
    """A [1, 1, H, W] map with value p in each (row0, row1, col0, col1, p) rectangle (inclusive)."""
    prob = np.zeros((1, 1, *shape), dtype=np.float32)
    for row0, row1, col0, col1, p in rects:
        prob[0, 0, row0 : row1 + 1, col0 : col1 + 1] = p
    return prob


def test_text_regions_finds_two_lines_top_to_bottom() -> None:
    prob = probability_map([(60, 75, 30, 150, 0.9), (10, 20, 20, 80, 0.8)])
    quads, scores = text_regions(prob, {})
    assert quads.shape == (2, 4, 2)
    assert quads.dtype == np.float32
    assert quads[0, 0, 1] < quads[1, 0, 1]
    np.testing.assert_allclose(scores, [0.8, 0.9], atol=1e-6)


def test_text_regions_orders_boxes_of_one_line_left_to_right() -> None:
    prob = probability_map([(10, 20, 120, 180, 0.9), (12, 22, 20, 80, 0.9), (60, 75, 30, 150, 0.9)])
    quads, _ = text_regions(prob)
    left_x = quads[:, 0, 0]
    top_y = quads[:, 0, 1]
    assert left_x[0] < left_x[1]  # same line: left box first
    assert top_y[2] > top_y[0] + 30  # next line last


def test_text_regions_unclips_by_area_ratio_over_perimeter_and_scales_to_the_original() -> None:
    prob = probability_map([(12, 22, 20, 80, 0.9)])
    quads, _ = text_regions(prob, {"src_w": 400, "src_h": 200})
    # minAreaRect of the contour is 60 x 10 around (50, 17); offset d = 600 * 1.6 / 140.
    d = 600 * 1.6 / 140
    expected_map = np.array(
        [
            [50 - 30 - d, 17 - 5 - d],
            [50 + 30 + d, 17 - 5 - d],
            [50 + 30 + d, 17 + 5 + d],
            [50 - 30 - d, 17 + 5 + d],
        ]
    )
    np.testing.assert_allclose(quads[0], expected_map * [2.0, 2.0], atol=1e-3)


def test_text_regions_corners_are_ordered_tl_tr_br_bl() -> None:
    quads, _ = text_regions(probability_map([(40, 60, 50, 150, 0.9)]))
    tl, tr, br, bl = quads[0]
    assert tl[0] < tr[0]
    assert tl[1] == pytest.approx(tr[1])
    assert br[1] > tr[1]
    assert br[0] == pytest.approx(tr[0])
    assert bl[0] == pytest.approx(tl[0])
    assert bl[1] == pytest.approx(br[1])


def test_text_regions_drops_weak_and_tiny_regions() -> None:
    prob = probability_map([(10, 20, 20, 80, 0.4), (50, 51, 50, 51, 0.99), (70, 85, 100, 180, 0.95)])
    quads, scores = text_regions(prob, {"box_thresh": 0.5})
    assert len(quads) == 1
    assert scores[0] == pytest.approx(0.95)


def test_text_regions_of_an_empty_map_is_empty() -> None:
    quads, scores = text_regions(np.zeros((32, 32), dtype=np.float32))
    assert quads.shape == (0, 4, 2)
    assert scores.shape == (0,)


def test_text_regions_rejects_a_threshold_above_one() -> None:
    with pytest.raises(VisionOpError, match=r"text_regions: opts\.thresh must be in 0\.\.1, got 3\.0"):
        text_regions(np.zeros((8, 8)), {"thresh": 3})


def test_text_regions_rejects_an_unknown_option() -> None:
    with pytest.raises(VisionOpError, match="text_regions: unknown option 'unclip'"):
        text_regions(np.zeros((8, 8)), {"unclip": 2})


def test_text_regions_rejects_a_batch_of_maps() -> None:
    with pytest.raises(VisionOpError, match=r"text_regions: prob must be a non-empty 2-D map"):
        text_regions(np.zeros((2, 1, 8, 8)))


# --- crop_quads ------------------------------------------------------------------------------


def test_crop_quads_of_an_axis_aligned_quad_copies_the_pixels() -> None:
    page = np.ascontiguousarray(FRAMES.page()[:, :, np.newaxis])
    quad = [[[10, 20], [110, 20], [110, 45], [10, 45]]]
    batch, widths = crop_quads(page, quad, 25, 400)
    assert batch.shape == (1, 25, 100, 1)
    assert widths == [100]
    np.testing.assert_array_equal(batch[0], page[20:45, 10:110])


def test_crop_quads_keeps_aspect_and_pads_to_the_widest_crop() -> None:
    image = FRAMES.astronaut()
    quads = np.array(
        [[[0, 0], [200, 0], [200, 50], [0, 50]], [[0, 100], [100, 100], [100, 150], [0, 150]]],
        dtype=np.float32,
    )
    batch, widths = crop_quads(image, quads, 48, 1000)
    assert widths == [192, 96]
    assert batch.shape == (2, 48, 192, 3)
    assert np.all(batch[1, :, 96:] == 128)


def test_crop_quads_squeezes_wide_crops_to_max_w_and_pads_to_it_when_fixed() -> None:
    image = FRAMES.astronaut()
    quads = [[[0, 0], [400, 0], [400, 20], [0, 20]], [[0, 0], [40, 0], [40, 20], [0, 20]]]
    batch, widths = crop_quads(image, quads, 48, 192, 0, True)
    assert widths == [192, 96]
    assert batch.shape == (2, 48, 192, 3)
    assert np.all(batch[1, :, 96:] == 0)


def test_crop_quads_turns_tall_crops_into_a_horizontal_line() -> None:
    image = FRAMES.astronaut()
    batch, widths = crop_quads(image, [[[0, 0], [20, 0], [20, 100], [0, 100]]], 20, 500)
    assert widths == [100]
    assert batch.shape == (1, 20, 100, 3)


def test_crop_quads_rectifies_a_tilted_quad() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[40:60, 20:80] = 255
    # A quad tilted by a few degrees around the white bar: the crop is mostly white in the middle.
    quad = [[[18, 42], [80, 36], [82, 56], [20, 62]]]
    batch, _ = crop_quads(image, quad, 20, 200)
    assert batch[0, 8:12, 10:-10].mean() > 200


def test_crop_quads_rejects_quads_of_three_corners() -> None:
    with pytest.raises(VisionOpError, match=r"crop_quads: quads must be \[K, 4, 2\] corner points"):
        crop_quads(np.zeros((8, 8, 3), dtype=np.uint8), [[[0, 0], [1, 0], [1, 1]]], 48, 100)


def test_crop_quads_rejects_a_zero_height() -> None:
    with pytest.raises(VisionOpError, match="crop_quads: h must be >= 1, got 0"):
        crop_quads(np.zeros((8, 8, 3), dtype=np.uint8), [], 0, 100)


def test_crop_quads_rejects_a_pad_value_above_255() -> None:
    with pytest.raises(VisionOpError, match=r"crop_quads: pad_value must be in 0\.\.255, got 256\.0"):
        crop_quads(np.zeros((8, 8, 3), dtype=np.uint8), [], 48, 100, 256)


def test_crop_quads_of_no_quads_is_an_empty_batch() -> None:
    batch, widths = crop_quads(np.zeros((8, 8, 3), dtype=np.uint8), [], 48, 100)
    assert batch.shape == (0, 48, 0, 3)
    assert widths == []


# --- rotate180 -------------------------------------------------------------------------------


def test_rotate180_turns_an_image_upside_down_and_back() -> None:
    image = FRAMES.coffee()
    rotated = rotate180(image)
    np.testing.assert_array_equal(rotated, image[::-1, ::-1])
    np.testing.assert_array_equal(rotate180(rotated), image)


def test_rotate180_rotates_only_the_chosen_images_of_a_batch() -> None:
    batch = np.stack([FRAMES.astronaut()[:64, :64]] * 3)
    by_index = rotate180(batch, [2])
    np.testing.assert_array_equal(by_index[0], batch[0])
    np.testing.assert_array_equal(by_index[1], batch[1, ::-1, ::-1])
    by_mask = rotate180(batch, [False, True, False])
    np.testing.assert_array_equal(by_mask, by_index)
    np.testing.assert_array_equal(rotate180(batch, []), batch)


def test_rotate180_rejects_which_for_a_single_image() -> None:
    with pytest.raises(VisionOpError, match="rotate180: which is only for N x H x W x C batches"):
        rotate180(np.zeros((4, 4, 3), dtype=np.uint8), [1])


def test_rotate180_rejects_an_index_out_of_range() -> None:
    with pytest.raises(VisionOpError, match=r"rotate180: index 3 in which is out of range 1..2"):
        rotate180(np.zeros((2, 4, 4, 3), dtype=np.uint8), [3])


def test_rotate180_rejects_a_mask_of_the_wrong_length() -> None:
    with pytest.raises(VisionOpError, match=r"rotate180: which must have one boolean per image \(2\)"):
        rotate180(np.zeros((2, 4, 4, 3), dtype=np.uint8), [True])
