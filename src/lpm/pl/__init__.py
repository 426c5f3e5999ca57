"""Figures (scanpy's ``pl``): functions that take result tables and draw them."""
