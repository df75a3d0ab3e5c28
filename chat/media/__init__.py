"""Pictures in conversations: uploaded through the hub, checked, stored by content hash.

A picture is re-encoded on upload (:mod:`.images`: the type sniffed from the bytes, the
size and pixel count bounded, EXIF and other metadata dropped, a thumbnail made), kept by
a :class:`~.store.MediaStore` under the SHA-256 of the stored bytes and bound to the
conversation it was uploaded for. Only that conversation's parties (and the arbiters of
a disputed one) can fetch it: with their token, or through a short-lived signed address
(:mod:`.links`) that an ``<img>`` tag can use. :mod:`.http` serves both sides.
"""
