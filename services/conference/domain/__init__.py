"""Conferences and their rules, in plain Python."""
