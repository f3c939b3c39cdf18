"""`make soak`: a random workload from many concurrent clients against a stack with two replicas of each service,
under a schedule of faults, then checks of the invariants on the quiet system; a summary on stdout.

main.py runs it; stack.py is the stack it needs and supervised_stack.py the stack it runs on (that of
`make up`); workload.py the clients, journal.py what they saw; faults.py the schedule; quiet.py waits for
the system to settle; checks.py judges it.
"""
