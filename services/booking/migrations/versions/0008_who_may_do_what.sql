-- Who may do what, where the database decides it in the statement it runs anyway.
--
-- The rules themselves are services/booking/domain/access.py's; the two stated here are:
-- a booking is made only for the caller's own user unless the caller is an admin, and a
-- webhook gets only the events of bookings its creator may read.


-- === Booking ======================================================================================
--
-- As in migrations 0002 and 0007, with two more things passed in, so that neither costs a round trip:
--   p_for_subject   the subject the user must belong to: the caller's; NULL for an admin, who
--                   books for any user. Any other user, existing or not, is NOT_YOURS: which
--                   users exist cannot be learned by booking for them.
--   p_actor_subject, p_actor_role
--                   who books, recorded with the booking's event (booking.record_booking_event()).
-- The outcomes are those of 0002, and NOT_YOURS; USER_NOT_FOUND only for an admin.

DROP FUNCTION booking.book_together(text[], text, timestamptz);
DROP FUNCTION booking.book(text, text, bigint, timestamptz, boolean);

CREATE FUNCTION booking.book(
    p_user_id text,
    p_conference_key text,
    p_conference_id bigint,
    p_now timestamptz,
    p_neighbours_locked boolean,
    p_for_subject text,
    p_actor_subject text,
    p_actor_role text,
    OUT outcome text,
    OUT detail text,
    OUT conference_id bigint,
    OUT conference_name text,
    OUT start_at timestamptz,
    OUT end_at timestamptz,
    OUT slots integer,
    OUT booking_id bigint,
    OUT status text,
    OUT created_at timestamptz,
    OUT updated_at timestamptz,
    OUT waitlist_position integer
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    seats booking.conference_seats%ROWTYPE;
    other record;
    has_neighbours boolean := false;
    new_status text;
    ticket bigint;
BEGIN
    IF p_conference_id IS NOT NULL THEN
        SELECT * INTO seats FROM booking.conference_seats WHERE conference_id = p_conference_id;
    ELSE
        SELECT * INTO seats FROM booking.conference_seats WHERE name_key = p_conference_key;
    END IF;
    IF NOT FOUND THEN
        outcome := 'CONFERENCE_UNKNOWN';
        RETURN;
    END IF;
    conference_id := seats.conference_id;
    conference_name := seats.name;
    start_at := seats.start_at;
    end_at := seats.end_at;
    slots := seats.slots;

    -- The user's lock serializes the user's own requests: what is read below stays true until the
    -- commit. Only a user the caller may book for is locked: another's is never held by a stranger.
    PERFORM FROM booking.users AS u
    WHERE u.user_id = p_user_id AND (p_for_subject IS NULL OR u.subject = p_for_subject)
    FOR UPDATE;
    IF NOT FOUND THEN
        outcome := CASE WHEN p_for_subject IS NULL THEN 'USER_NOT_FOUND' ELSE 'NOT_YOURS' END;
        RETURN;
    END IF;
    IF p_now >= seats.start_at THEN
        outcome := 'CONFERENCE_STARTED';
        RETURN;
    END IF;
    FOR other IN
        SELECT b.conference_id, b.status, s.name
        FROM booking.bookings AS b JOIN booking.conference_seats AS s ON s.conference_id = b.conference_id
        WHERE b.user_id = p_user_id AND b.status <> 'CANCELED' AND b.during && tstzrange(seats.start_at, seats.end_at)
        ORDER BY b.booking_id
    LOOP
        IF other.conference_id = seats.conference_id THEN
            outcome := 'ALREADY_BOOKED';
            RETURN;
        ELSIF other.status = 'CONFIRMED' THEN
            outcome := 'OVERLAPPING_BOOKING';
            detail := other.name;
            RETURN;
        END IF;
        has_neighbours := true;
    END LOOP;
    IF has_neighbours AND NOT p_neighbours_locked THEN
        outcome := 'HAS_NEIGHBOURS';
        RETURN;
    END IF;

    -- What the event of the new booking records (booking.record_booking_event()): the booker's own
    -- doing. Local to the transaction, and set again by every booking and every move.
    PERFORM set_config('booking.change_reason', 'user', true),
            set_config('booking.actor_subject', coalesce(p_actor_subject, ''), true),
            set_config('booking.actor_role', p_actor_role, true);

    -- The ledger's lock, held until the commit: taken as late as possible.
    SELECT * INTO seats FROM booking.conference_seats WHERE conference_id = seats.conference_id FOR UPDATE;
    -- A seat is taken directly only while nobody waits: a freed seat belongs to the head of the line.
    IF seats.seats_held < seats.slots AND seats.waiting = 0 THEN
        UPDATE booking.conference_seats SET seats_held = seats_held + 1 WHERE conference_id = seats.conference_id;
        new_status := 'CONFIRMED';
    ELSE
        new_status := 'WAITLISTED';  -- a trigger gives it its ticket and counts it
    END IF;
    INSERT INTO booking.bookings (user_id, conference_id, status, during)
    VALUES (p_user_id, seats.conference_id, new_status, tstzrange(seats.start_at, seats.end_at))
    RETURNING booking_id, created_at, updated_at, join_order INTO booking_id, created_at, updated_at, ticket;
    status := new_status;
    IF new_status = 'WAITLISTED' THEN
        waitlist_position := booking.waitlist_position(seats.conference_id, ticket);
    END IF;
    outcome := 'BOOKED';
END
$$;

-- As in migration 0007, each booking with its own caller: the n-th user is booked for the n-th
-- caller (p_for_subjects[n], who may be NULL: an admin) and records that caller as its actor.
-- The user rows are locked first, all at once in user id order, as before; only those their
-- callers may book for.
CREATE FUNCTION booking.book_together(
    p_user_ids text[],
    p_for_subjects text[],
    p_actor_subjects text[],
    p_actor_roles text[],
    p_conference_key text,
    p_now timestamptz
)
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
    n integer;
BEGIN
    PERFORM FROM booking.users AS u
    JOIN unnest(p_user_ids, p_for_subjects) AS asked (user_id, for_subject)
      ON asked.user_id = u.user_id AND (asked.for_subject IS NULL OR u.subject = asked.for_subject)
    ORDER BY u.user_id
    FOR UPDATE OF u;
    FOR n IN 1 .. coalesce(cardinality(p_user_ids), 0) LOOP
        RETURN QUERY
        SELECT p_user_ids[n], b.outcome, b.detail, b.conference_id, b.conference_name, b.start_at, b.end_at,
               b.slots, b.booking_id, b.status, b.created_at, b.updated_at, b.waitlist_position
        FROM booking.book(
            p_user_ids[n], p_conference_key, NULL, p_now, false, p_for_subjects[n], p_actor_subjects[n], p_actor_roles[n]
        ) AS b;
    END LOOP;
END
$$;


-- === Events and their deliveries ===================================================================
--
-- As in migration 0006, and two things more:
-- - the event records who caused the change: `booking.actor_subject` and `booking.actor_role`, said
--   like the reason (set_config, local to the transaction) by whoever changes a booking; unsaid,
--   the system (an offer, an expiry, the start).
-- - a webhook gets the event only if its creator may read the booking: an admin's sees everything;
--   anyone else's, the bookings of the creator's own user and of the conferences it owns. The
--   subjects are read only when some webhook is left to decide for (uncorrelated subqueries are
--   run once, on first use), so a change that no webhook wants costs nothing more.
CREATE OR REPLACE FUNCTION booking.record_booking_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    event_type text := CASE NEW.status
        WHEN 'CONFIRMED' THEN 'booking.confirmed'
        WHEN 'WAITLISTED' THEN 'booking.waitlisted'
        WHEN 'CONFIRMATION_PENDING' THEN 'booking.offered'
        WHEN 'CANCELED' THEN 'booking.canceled'
    END;
    recorded bigint;
BEGIN
    INSERT INTO booking.booking_events (
        booking_id, type, reason, occurred_at, status, offer_deadline, waitlist_position, actor_subject, actor_role
    )
    VALUES (
        NEW.booking_id,
        event_type,
        coalesce(nullif(current_setting('booking.change_reason', true), ''), 'user'),
        NEW.updated_at,
        NEW.status,
        NEW.offer_deadline,
        CASE WHEN NEW.status = 'WAITLISTED' THEN booking.waitlist_position(NEW.conference_id, NEW.join_order) END,
        nullif(current_setting('booking.actor_subject', true), ''),
        coalesce(nullif(current_setting('booking.actor_role', true), ''), 'system')
    )
    RETURNING sequence INTO recorded;

    INSERT INTO booking.webhook_deliveries (webhook_id, event_sequence)
    SELECT w.webhook_id, recorded
    FROM booking.webhooks AS w
    WHERE (w.event_types IS NULL OR event_type = ANY (w.event_types))
      AND (w.conference_id IS NULL OR w.conference_id = NEW.conference_id)
      AND (
          w.sees_everything
          OR w.owner_subject = (SELECT u.subject FROM booking.users AS u WHERE u.user_id = NEW.user_id)
          OR w.owner_subject = (
              SELECT s.owner_subject FROM booking.conference_seats AS s WHERE s.conference_id = NEW.conference_id
          )
      )
    FOR KEY SHARE OF w;
    RETURN NULL;
END
$$;
