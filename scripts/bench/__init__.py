"""`make bench`: the product driven over HTTP by wrk, each figure beside a ceiling measured in the same run on the
same machine, and the waitlist's delays, on a private stack; a Markdown report on stdout, progress on stderr.

main.py runs it all; scenarios.py holds the wrk figures, ceilings.py their ceilings, waitlist.py the delays.
"""
