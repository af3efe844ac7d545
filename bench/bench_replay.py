#!/usr/bin/env python3
"""Offline replay throughput vs the engine on the same frames from memory; prints a table.

For each storage (sqlite3, mcap) and image kind (raw Image, JPEG CompressedImage) it writes
a bag of the cyclist clip, then times, alternately and ``--repeat`` times:

* memory: a fresh pipeline runs the frames, already decoded in memory (``Pipeline.run``),
  built with ``Pipeline.from_config`` defaults;
* memory*: the same, with the pipeline built as replay builds it (``replay_pipeline``:
  ONNX Runtime thread pools that do not spin);
* replay: ``replay_bag`` lossless on the bag: read, deserialize, decode (JPEG too), run, map,
  serialize and write every result to an output bag.

Both times run from the first frame to the last result (model warm-up included in both).
fps columns are medians of the repeats; ratio = median replay fps / the better median of
memory and memory*, "ratio best" the same with the best of each. 1.0 means bag reading
and result writing cost nothing on the pipeline's throughput. "I/O wait ms" (median) is the
time the pipeline's thread waited for the reader or the writer during a replay: what reading
and writing added to the critical path (the rest of any gap is CPU shared with them).

    python bench/bench_replay.py                      # person_pose, 100 frames
    python bench/bench_replay.py --config config/face_detector.lua --frames 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ros_vision_pipe.engine.pipeline import Pipeline  # noqa: E402
from ros_vision_pipe.frames import iter_frames  # noqa: E402
from ros_vision_pipe.replay.bag_reader import ImageBagReader  # noqa: E402
from ros_vision_pipe.replay.bag_replay import replay_bag, replay_pipeline  # noqa: E402
from ros_vision_pipe.replay.image_bag import ImageTopicSpec, Storage, write_image_bag  # noqa: E402
from ros_vision_pipe.replay.options import Driver, ReplayOptions  # noqa: E402


def memory_fps(config: Path, frames: Sequence[tuple[np.ndarray, str, str]], replay_settings: bool) -> float:
    """Frames per second of a fresh pipeline on decoded frames (first frame to last result).

    ``replay_settings``: build it as replay does (``replay_pipeline``: no thread-pool spinning),
    else with ``Pipeline.from_config`` defaults.
    """
    factory = replay_pipeline if replay_settings else Pipeline.from_config
    with factory(config, lossless=True) as pipeline:
        start = time.perf_counter()
        for index, (image, encoding, topic) in enumerate(frames):
            pipeline.run(image, source=topic, encoding=encoding, frame_id=index)
        return len(frames) / (time.perf_counter() - start)


def replay_fps(config: Path, bag: Path, output: Path, driver: Driver) -> tuple[float, float]:
    """Frames per second of lossless replay of ``bag`` into ``output``, and the ms the pipeline waited for I/O."""
    report = replay_bag(ReplayOptions(config=config, bags=(bag,), output=output, driver=driver))
    return report.frames_per_s, (report.read_wait_s + report.write_wait_s) * 1e3


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "person_pose.lua")
    parser.add_argument("--source", default="sample:bikes")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--storages", nargs="+", default=["sqlite3", "mcap"])
    parser.add_argument("--kinds", nargs="+", default=["raw", "jpeg"])
    parser.add_argument("--pipelined", action="store_true", help="drive the frame-level pipeline (submit)")
    args = parser.parse_args()
    driver = Driver.PIPELINED if args.pipelined else Driver.RUN
    clip = list(iter_frames(args.source, args.frames))
    print(f"config {args.config.name}, {len(clip)} frames of {args.source} "
          f"({clip[0].image.shape[1]}x{clip[0].image.shape[0]}), {args.repeat} repeats, driver {driver.value}")
    print(f"{'storage':<8} {'kind':<5} {'bag MB':>7} {'memory fps':>11} {'memory* fps':>12} {'replay fps':>11} "
          f"{'ratio':>6} {'ratio best':>10} {'I/O wait ms':>11}")
    with tempfile.TemporaryDirectory(prefix="bench_replay_") as tmp:
        for storage_name in args.storages:
            for kind in args.kinds:
                storage = Storage.parse(storage_name)
                spec = ImageTopicSpec("/camera/image_raw/compressed" if kind == "jpeg" else "/camera/image_raw",
                                      compressed=kind == "jpeg")
                bag = write_image_bag(Path(tmp) / f"in_{storage_name}_{kind}", clip, [spec], storage=storage)
                size = sum(p.stat().st_size for p in ([bag] if bag.is_file() else bag.iterdir())) / 1e6
                with ImageBagReader([bag]) as reader:
                    decoded = []
                    for message in reader.messages():
                        frame = reader.decode(message)
                        decoded.append((frame.image.copy(), frame.encoding, frame.topic))
                memory: list[float] = []
                memory_replay_settings: list[float] = []
                replay: list[float] = []
                waits: list[float] = []
                for attempt in range(args.repeat):  # interleaved, so that load changes hit all three alike
                    memory.append(memory_fps(args.config, decoded, False))
                    memory_replay_settings.append(memory_fps(args.config, decoded, True))
                    out = Path(tmp) / f"out_{storage_name}_{kind}_{attempt}"
                    fps, wait = replay_fps(args.config, bag, out, driver)
                    replay.append(fps)
                    waits.append(wait)
                m, ms, r = (statistics.median(v) for v in (memory, memory_replay_settings, replay))
                best_ratio = max(replay) / max(max(memory), max(memory_replay_settings))
                print(f"{storage_name:<8} {kind:<5} {size:>7.1f} {m:>11.1f} {ms:>12.1f} {r:>11.1f} "
                      f"{r / max(m, ms):>6.3f} {best_ratio:>10.3f} {statistics.median(waits):>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
