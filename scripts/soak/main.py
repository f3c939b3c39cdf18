"""Start the stack, set up users and conferences, run the clients beside the fault schedule, wait for quiet,
check, print the summary; everything it started is stopped again whatever happens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from scripts import infra
from scripts.launching import StackError
from scripts.soak import checks, faults, quiet, workload
from scripts.soak.database import Databases
from scripts.soak.faults import FaultLog, FaultSchedule
from scripts.soak.journal import Journal
from scripts.soak.options import Options, parse_options
from scripts.soak.report import Summary, progress
from scripts.soak.stack import SERVICES, SoakStack
from scripts.soak.supervised_stack import open_stack
from scripts.soak.workload import SoakError, World
from scripts.supervision import SupervisorError


def soak(stack: SoakStack, options: Options) -> Summary:
    summary = Summary(parameters=options.describe())
    log = FaultLog()
    kinds = faults.faults(
        stack, broker_outage=options.broker_outage_seconds, database_pause=options.database_pause_seconds
    )
    schedule = FaultSchedule(
        stack, faults.shuffled_rounds(kinds, options.fault_rounds, options.seed), options.operations, log
    )
    journal = Journal(log)
    world = World(options, journal, schedule.gates)
    asyncio.run(_set_up(world, stack))

    run_started = datetime.now(UTC)
    started = time.monotonic()
    progress(f"{options.operations} operations from {options.clients} clients, {schedule.count} faults")
    schedule.start()
    try:
        asyncio.run(workload.run_clients(world, stack.base_url))
    finally:
        schedule.gates.open_all()
        schedule.finished.wait()  # the last fault is over, whatever happened to the workload
    ended = time.monotonic()
    summary.seconds = ended - started
    progress(f"workload done in {summary.seconds:.0f} s; waiting for the system to settle")

    journal.judge_transport_failures()
    databases = Databases({service: stack.database_url(service) for service in SERVICES})
    try:
        summary.quiet_after_seconds = quiet.wait_until_quiet(stack, databases, options.quiet_timeout_seconds)
        if summary.quiet_after_seconds is None:
            work = "; ".join(quiet.unfinished_work(stack, databases))
            journal.violate(f"not quiet {options.quiet_timeout_seconds:.0f} s after the workload: {work}")
        # A turn counts as lost once nothing has happened in its conference for the promotion grace: let the
        # last requests' changes age that long, or a loss they touched would go unseen.
        time.sleep(max(0.0, ended + checks.PROMOTION_GRACE_SECONDS + 1 - time.monotonic()))
        progress("checking the invariants")
        verdict = checks.check(databases, journal, run_started)
        verdict.violations += checks.check_dead_letters(stack.amqp_url)
    finally:
        databases.close()

    summary.operations = journal.issued
    summary.succeeded = journal.succeeded
    summary.answers = dict(journal.answers)
    summary.errors = dict(journal.errors)
    summary.faults = [{"name": f.name, "program": f.program, "seconds": f.seconds} for f in log.injected]
    summary.world = verdict.world
    summary.restarts = stack.restarts()
    summary.violations = [*log.failures, *journal.violations, *verdict.violations]
    return summary


async def _set_up(world: World, stack: SoakStack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=world.options.call_timeout_seconds) as http:
        await workload.set_up(world, http, stack)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        with open_stack(options) as stack:
            summary = soak(stack, options)
    except KeyboardInterrupt:
        progress("interrupted; everything it started is stopped")
        return 130
    except (SoakError, StackError, SupervisorError, infra.InfraError) as error:
        progress(f"failed: {error} (logs in {options.state_dir / 'logs'})")
        return 2
    print(summary.text(), end="")
    if options.summary_json:
        summary.write_json(options.summary_json)
    return summary.exit_code
