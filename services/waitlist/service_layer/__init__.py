"""How the waitlist service reacts to each event and to overdue offers."""
