"""Sourcelight's dialogs."""
