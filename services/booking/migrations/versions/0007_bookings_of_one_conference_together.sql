-- Several users' bookings of one conference in one statement (docs/adr/0019): one transaction,
-- one hold of the conference's ledger lock and one commit for them all.
--
-- Each is decided and written as booking.book() does it alone, in the order given, which is
-- the order the callers came in: so they join the line in that order. A refusal is that user's
-- `outcome`, changing nothing, as with booking.book(). An error (a constraint's, a deadlock)
-- undoes them all; the callers then book one by one, each its own transaction.
--
-- Lock order, as everywhere here: the user rows, all of them first and in one order (user id),
-- so that two batches sharing a user cannot deadlock; then the ledger row, held from the first
-- booking to the commit.
CREATE FUNCTION booking.book_together(p_user_ids text[], p_conference_key text, p_now timestamptz)
RETURNS TABLE (
    user_id text,
    outcome text,
    detail text,
    conference_id bigint,
    conference_name text,
    start_at timestamptz,
    end_at timestamptz,
    slots integer,
    booking_id bigint,
    status text,
    created_at timestamptz,
    updated_at timestamptz,
    waitlist_position integer
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    one_user text;
BEGIN
    PERFORM FROM booking.users AS u WHERE u.user_id = ANY (p_user_ids) ORDER BY u.user_id FOR UPDATE;
    FOREACH one_user IN ARRAY p_user_ids LOOP
        RETURN QUERY
        SELECT one_user, b.outcome, b.detail, b.conference_id, b.conference_name, b.start_at, b.end_at,
               b.slots, b.booking_id, b.status, b.created_at, b.updated_at, b.waitlist_position
        FROM booking.book(one_user, p_conference_key, NULL, p_now, false) AS b;
    END LOOP;
END
$$;
