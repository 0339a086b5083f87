"""Media pipeline: camera readers, GOP cache, fMP4 relay, keyframe mosaics, synthetic cameras.

Everything here stays in memory: no frame, tile or fragment is ever written to disk.
"""
