"""Looks: the versioned look format, the preset library and the makeup renderer."""
