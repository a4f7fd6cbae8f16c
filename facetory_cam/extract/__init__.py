"""Turning a reference photo of a makeup look into an editable look."""
