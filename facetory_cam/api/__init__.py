"""The control plane: a local HTTP API (FastAPI), its security, and the look library it serves.

``app.create_app`` builds the app from injected dependencies; ``service.ApiService`` wires it
into ``facetory run``; ``security`` says what protects a loopback API from the user's own
browser; ``store`` is the crash-safe look library. Submodules are imported directly so that
the library can be used without loading the web stack.
"""
