"""Wire protocol v1: pure data, no sockets (frames, codec, error codes)."""
