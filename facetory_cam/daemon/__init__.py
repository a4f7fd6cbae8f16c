"""The live pipeline: capture, processing and output threads, control commands and stats."""
