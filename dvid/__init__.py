"""dvid: a versioned, image-oriented key-value dataservice for connectomics."""

__version__ = "0.1.0"

#: The DVID release whose HTTP API this server reproduces; reported as "DVID Version".
DVID_API_VERSION = "v1.0.0"
