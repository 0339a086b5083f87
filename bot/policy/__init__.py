"""The pure core of Vigie: the convention as data, decisions, and the incident state machine.

Nothing here performs I/O or imports a transport, web or media library: a test enforces it.
"""
