"""Tests of the reused result arrays of ``vp`` ops: reused only when nobody else can see them."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ros_vision_pipe.engine.lua.host_api import install_vp
from ros_vision_pipe.engine.lua.sandbox import LuaScript
from ros_vision_pipe.engine.vision.buffers import ReusedBuffers
from ros_vision_pipe.engine.vision.crop_batch import crop_batch
from ros_vision_pipe.engine.vision.image import crop_boxes

BIG = (4, 256, 256)  # 1 MiB of float32: kept


def test_an_array_is_handed_out_again_only_once_nothing_else_refers_to_it() -> None:
    pool = ReusedBuffers()
    first = pool.take(BIG, np.float32)
    address = first.ctypes.data
    assert pool.take(BIG, np.float32).ctypes.data != address  # still held: a new one
    view = first[1:2]
    del first
    assert pool.take(BIG, np.float32).ctypes.data != address  # a view still holds it
    del view
    assert pool.take(BIG, np.float32).ctypes.data == address
    assert pool.take((2, 256, 256), np.float32).shape == (2, 256, 256)  # other shapes are other arrays


def test_small_arrays_are_not_kept_and_the_pool_stays_within_its_bound() -> None:
    pool = ReusedBuffers(keep_bytes=3 << 20)
    held = [pool.take(BIG, np.float32) for _ in range(5)]
    pool.take((8, 8), np.float32)
    assert pool.kept_bytes == 3 << 20 and len(held) == 5


def test_two_threads_never_get_the_same_array() -> None:
    pool = ReusedBuffers()
    seen: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def work(slot: int) -> None:
        barrier.wait()
        for _ in range(300):
            array = pool.take(BIG, np.float32)
            array[0, 0, 0] = slot
            seen[slot].append(array.ctypes.data)
            assert array[0, 0, 0] == slot  # nobody wrote into it meanwhile
            del array

    threads = [threading.Thread(target=work, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen[0]) == len(seen[1]) == 300


def test_a_batch_a_script_keeps_is_never_written_over_by_the_next_call(tmp_path: Path) -> None:
    path = tmp_path / "keep.lua"
    path.write_text("""
function crops(img, value)
  local batch = vp.crop_batch(img, { { 0, 0, 40, 40 }, { 10, 10, 50, 50 } }, 256, 256)
  if KEPT == nil then KEPT = batch end
  return KEPT:at(1, 128, 128, 1), batch:at(1, 128, 128, 1)
end
""", encoding="utf-8")
    script = LuaScript(path, owner="keep", search_dir=tmp_path, install=install_vp)
    function = script.global_function("crops")
    for value in (7, 9, 11):
        image = script.to_lua(np.full((64, 64, 3), value, np.uint8))
        kept, new = script.call(function, "crops", image)
        script.collect(full=True)
        assert (kept, new) == (7.0, float(value))  # the kept batch still holds the first frame's pixels


def test_crop_batch_reuses_its_batch_once_the_last_one_is_released() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    boxes = np.array([[0, 0, 40, 40]] * 4, np.float32)
    first, _ = crop_batch(image, boxes, 256, 256)
    address = first.ctypes.data
    del first
    other = np.full((64, 64, 3), 200, np.uint8)
    again, _ = crop_batch(other, boxes, 256, 256)
    assert again.ctypes.data == address
    assert np.array_equal(again, crop_boxes(other, boxes, 256, 256)[0].astype(np.float32))  # all written over
