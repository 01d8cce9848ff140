"""GB/T 26875.3-2011 receiver: fire-alarm panels reporting through user information transmission devices.

`frame` and `framer` cut and check frames, `units` reads the application data, `flags` names the
status bits; `mapping` turns components into normalized records and `receiver` serves TCP and UDP.
"""
