"""dvid.api: a numpy-first Python client for dvid (and DVID) servers. The tour: docs/python.md.

import dvid.api
node = dvid.api.connect("http://127.0.0.1:8000")[":master"]
v = node["grayscale"]
a = v[0:256, 100:612, 2000:2512]          # (z, y, x), a numpy array
"""

from dvid.api.annotation import Annotations, dataframe
from dvid.api.box import BadIndex, Box
from dvid.api.errors import (
    BadRequest,
    Conflict,
    DVIDClientError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    ServerError,
    Unavailable,
    Unreachable,
)
from dvid.api.instance import Instance
from dvid.api.keyvalue import KeyValue
from dvid.api.labels import LabelBlk, LabelMap, LabelVol, LabelVolume
from dvid.api.neuronjson import NeuronJSON
from dvid.api.server import Server, connect
from dvid.api.version import Version
from dvid.api.volume import Volume

__all__ = [
    "Annotations",
    "BadIndex",
    "BadRequest",
    "Box",
    "Conflict",
    "DVIDClientError",
    "Instance",
    "KeyValue",
    "LabelBlk",
    "LabelMap",
    "LabelVol",
    "LabelVolume",
    "MethodNotAllowed",
    "NeuronJSON",
    "NotFound",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "Server",
    "ServerError",
    "Unavailable",
    "Unreachable",
    "Version",
    "Volume",
    "connect",
    "dataframe",
]
