"""Sourcelight's widgets: one widget class per module."""
