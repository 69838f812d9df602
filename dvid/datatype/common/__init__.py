"""Code shared by datatypes: value envelopes, protobuf messages, request helpers."""
