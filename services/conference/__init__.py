"""The conference service: creates conferences and announces when each one starts."""
