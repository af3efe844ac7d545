"""The Fast DDS transport choices bench/bench_transport.py measures, as environments for its processes.

Each choice is a set of Fast DDS / rmw_fastrtps variables; the shared-memory segment sizes and the
data-sharing variants are XML profiles written into a temporary folder (docs/ros.md "Transport
choices").
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED_PROFILE = REPO / "config" / "fastdds_large_data.xml"
#: Variables that configure Fast DDS / rmw_fastrtps: a child gets only those of its choice.
DDS_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS",
                 "RMW_FASTRTPS_USE_QOS_FROM_XML", "RMW_FASTRTPS_PUBLICATION_MODE", "SKIP_DEFAULT_XML")
DEFAULT_CHOICES = ("defaults", "shm4", "shm16", "shm32", "shm64", "shm16-only", "large_data", "large_data_4mb",
                   "data_sharing", "data_sharing_on", "shm16_async")
#: LARGE_DATA with its options; ``sockets_size=16MB`` (over ``net.core.rmem_max``, 4 MiB here) failed to create the
#: participant ("User transport failed to register").
LARGE_DATA_4MB = "LARGE_DATA?max_msg_size=1MB&sockets_size=4MB&non_blocking=true"

SHM_UDP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>bench_shm</transport_id>
        <type>SHM</type>
        <segment_size>{segment}</segment_size>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>bench_udp</transport_id>
        <type>UDPv4</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="bench_participant" is_default_profile="true">
      <rtps>
        <useBuiltinTransports>false</useBuiltinTransports>
        <userTransports>
          <transport_id>bench_shm</transport_id>{udp}
        </userTransports>
      </rtps>
    </participant>{endpoints}
  </profiles>
</dds>
"""
UDP_REF = "\n          <transport_id>bench_udp</transport_id>"
DATA_SHARING_ENDPOINTS = """
    <data_writer profile_name="bench_writer" is_default_profile="true">
      <qos><data_sharing><kind>{kind}</kind></data_sharing></qos>
      <historyMemoryPolicy>PREALLOCATED_WITH_REALLOC</historyMemoryPolicy>
    </data_writer>
    <data_reader profile_name="bench_reader" is_default_profile="true">
      <qos><data_sharing><kind>{kind}</kind></data_sharing></qos>
      <historyMemoryPolicy>PREALLOCATED_WITH_REALLOC</historyMemoryPolicy>
    </data_reader>"""
MIB = 1024 * 1024


def _shm_xml(segment_mib: int, udp: bool = True, data_sharing: str = "") -> str:
    endpoints = DATA_SHARING_ENDPOINTS.format(kind=data_sharing) if data_sharing else ""
    return SHM_UDP_XML.format(segment=segment_mib * MIB, udp=UDP_REF if udp else "", endpoints=endpoints)


def choice_environment(choice: str, folder: Path) -> dict[str, str]:
    """The Fast DDS variables of one choice (profiles written into ``folder``).

    Raises:
        ValueError: ``choice`` is not one of ``DEFAULT_CHOICES``.
    """
    def profile(name: str, text: str) -> str:
        path = folder / f"{name}.xml"
        path.write_text(text, encoding="utf-8")
        return str(path)

    if choice == "defaults":
        return {}
    if choice == "shm16":
        return {"FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED_PROFILE)}
    if choice in ("shm4", "shm32", "shm64"):
        return {"FASTDDS_DEFAULT_PROFILES_FILE": profile(choice, _shm_xml(int(choice[3:])))}
    if choice == "shm16-only":
        return {"FASTDDS_DEFAULT_PROFILES_FILE": profile(choice, _shm_xml(16, udp=False))}
    if choice == "large_data":
        return {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
    if choice == "large_data_4mb":
        return {"FASTDDS_BUILTIN_TRANSPORTS": LARGE_DATA_4MB}
    if choice in ("data_sharing", "data_sharing_on"):
        kind = "ON" if choice == "data_sharing_on" else "AUTOMATIC"
        return {"FASTDDS_DEFAULT_PROFILES_FILE": profile(choice, _shm_xml(16, data_sharing=kind)),
                "RMW_FASTRTPS_USE_QOS_FROM_XML": "1"}
    if choice == "shm16_async":
        return {"FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED_PROFILE), "RMW_FASTRTPS_PUBLICATION_MODE": "ASYNCHRONOUS"}
    raise ValueError(f"unknown transport choice {choice!r} (known: {', '.join(DEFAULT_CHOICES)})")


def child_environment(variables: dict[str, str], discovery_range: str | None) -> dict[str, str]:
    """This process's environment without any Fast DDS setting, plus ``variables``."""
    env = {name: value for name, value in os.environ.items() if name not in DDS_VARIABLES}
    env.update(variables)
    if discovery_range:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = discovery_range
    return env
