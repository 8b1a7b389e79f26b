"""Sourcelight's desktop window (PySide6 on the qasync event loop)."""
