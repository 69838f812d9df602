"""keyvalue datatype (placeholder while the full implementation lands)."""

from dvid.datatype.base import Datatype
from dvid.datatype.registry import register


@register
class KeyValue(Datatype):
    type_name = "keyvalue"
    type_url = "github.com/janelia-flyem/dvid/datatype/keyvalue"
    type_version = "0.2"
    help_text = "keyvalue\n"
