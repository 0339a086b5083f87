"""SIA DC-09 alarm panels: the receiver (an adapter) and its pure parts (frame, codes, sender).

``frame``, ``codes`` and ``sender`` do no I/O of their own beyond the sender's socket and are
tested like the policy core; ``sender`` is written from the standard, independently of ``frame``.
"""
