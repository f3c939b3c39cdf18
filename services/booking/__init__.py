"""The booking service: users, bookings, the seat ledger and the order of each waitlist."""
