"""ROS-free conversion between ROS messages and the engine, shared by the node and bag replay.

- ``image_encoding``: ``sensor_msgs/Image`` and ``CompressedImage`` payloads -> engine images
  (and back, for publishing frames).
- ``result_mapping``: ``FrameResult`` -> ``ModelResult`` / ``FusedResult`` message fields, the
  status codes and their names (one vocabulary for the node, replay and the demo).
- ``vision_msgs_mapping``: detections -> ``vision_msgs/Detection2DArray`` fields.
- ``typestore``: the rosbags type store of this package's messages.

Nothing here imports rclpy: the node (``ros_vision_pipe.ros``) fills rclpy messages from
these fields, replay (``ros_vision_pipe.replay``) fills rosbags messages from the same ones.
"""
