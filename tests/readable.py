"""Facts made readable for the canary scans: what an encoded part holds, as text."""

from ansible_collections.envparity.audit.plugins.module_utils.pg_tables import decode_shape


def readable(value):
    """A copy of facts with every postgres table's "shape" (base64 text, pg_tables) decoded.

    A canary inside a table's column default or constraint would not show in the base64 text:
    the scans must look at what the text holds.
    """
    if isinstance(value, dict):
        if isinstance(value.get("shape"), str) and "row_estimate" in value:
            return dict(value, shape=decode_shape(value["shape"]))
        return {key: readable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [readable(item) for item in value]
    return value
