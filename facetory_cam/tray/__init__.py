"""The tray icon: a small separate process that drives the daemon through its local API.

``client`` speaks HTTP with the Bearer token, ``menu`` turns API answers into a menu model
(pure, testable without a display) and ``app`` is the pystray glue. Only ``app`` imports pystray.
"""
