"""The ROS 2 layer: the pipeline node, its parameters, callback-group task runner, diagnostics and
the DDS bag player (``bag_player.py``, ``python -m ros_vision_pipe.replay play``).

Everything here imports rclpy; the engine (``ros_vision_pipe.engine``) and the message
mapping (``ros_vision_pipe.messages.result_mapping``, ``ros_vision_pipe.messages.image_encoding``) do not.
"""
