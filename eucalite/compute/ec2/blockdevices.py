"""RegisterImage's ``BlockDeviceMapping.N`` Query structure, read into the plain mappings
:class:`eucalite.compute.imageimport.Registration` takes (the service checks the snapshots
they name). Malformed input is reported with the parameter name the client sent."""
from __future__ import annotations

from ... import integers
from ...ebs.volumes import MAX_SIZE_GB
from ...errors import InvalidParameterValue, MissingParameter
from ...query import Struct


def parse_block_device_mappings(items: list) -> list[dict]:
    """``BlockDeviceMapping.N`` structs (``params.get_struct_list``) as
    ``{"device", "virtual"?, "no_device"?, "ebs"?}`` dicts."""
    mappings = []
    for index, item in enumerate(items, 1):
        item = Struct.of(item, f"BlockDeviceMapping.{index}")
        device = item.get("DeviceName")
        if not device:
            raise MissingParameter(f"The request must contain the parameter "
                                   f"{item.name}.DeviceName")
        mapping: dict = {"device": device}
        if item.get("VirtualName") is not None:
            mapping["virtual"] = item["VirtualName"]
        if "NoDevice" in item:
            mapping["no_device"] = True
        if "Ebs" in item:
            mapping["ebs"] = _ebs(item.struct("Ebs"), index)
        mappings.append(mapping)
    return mappings


def _ebs(ebs: Struct, index: int) -> dict:
    """One mapping's ``Ebs`` struct: snapshot, size (1..MAX_SIZE_GB), deletion flag, type."""
    text = ebs.get("VolumeSize")
    size = None if text is None else integers.parse(text, minimum=1, maximum=MAX_SIZE_GB)
    if text is not None and size is None:
        raise InvalidParameterValue(f"Value ({text}) for parameter "
                                    f"BlockDeviceMapping.{index}.Ebs.VolumeSize is invalid. "
                                    f"Expected an integer between 1 and {MAX_SIZE_GB}.")
    return {"snapshot_id": ebs.get("SnapshotId"), "volume_size": size,
            "delete_on_termination":
                str(ebs.get("DeleteOnTermination", "true")).lower() == "true",
            "volume_type": ebs.get("VolumeType") or "standard"}
