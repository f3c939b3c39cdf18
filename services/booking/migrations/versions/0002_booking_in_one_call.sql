-- The booking transaction as one stored function, and the bookkeeping of every line.
--
-- Lock order, as everywhere in this service: the user row, then seat ledger rows
-- (ascending conference id), then booking rows. The triggers below touch a
-- ledger row and its tree only while the transaction holds that ledger's lock.


-- === Tickets: the order of each line ===========================================================

-- A booking that joins a line (new, or back after its offer expired) takes the next
-- ticket of that conference's line: FIFO by the moment it joined, distinct for all.
CREATE FUNCTION booking.take_waitlist_ticket() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE booking.conference_seats SET tickets_issued = tickets_issued + 1
    WHERE conference_id = NEW.conference_id
    RETURNING tickets_issued INTO NEW.join_order;
    RETURN NEW;
END
$$;

CREATE TRIGGER ticket_on_joining BEFORE INSERT ON booking.bookings
FOR EACH ROW WHEN (NEW.status = 'WAITLISTED')
EXECUTE FUNCTION booking.take_waitlist_ticket();

CREATE TRIGGER ticket_on_rejoining BEFORE UPDATE OF status ON booking.bookings
FOR EACH ROW WHEN (NEW.status = 'WAITLISTED' AND OLD.status <> 'WAITLISTED')
EXECUTE FUNCTION booking.take_waitlist_ticket();


-- === The waitlist tree: a position in O(log n) ==================================================
--
-- A Fenwick (binary indexed) tree per conference over its tickets 1..2^31-1: node k
-- holds the number of WAITLISTED bookings with a ticket in (k - lowbit(k), k]. The
-- position of ticket t is the sum of the nodes that t's prefix decomposes into (one
-- per set bit of t); a booking joining or leaving changes the nodes covering its
-- ticket (at most 31). So neither costs more for a line of 50,000 than for one of 5.

-- The nodes whose sums make up the prefix 1..ticket: ticket with its lowest set bits cleared one by one.
CREATE FUNCTION booking.waitlist_tree_nodes_summing(ticket bigint) RETURNS SETOF bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (ticket >> bit) << bit FROM generate_series(0, 30) AS bit WHERE (ticket >> bit) & 1 = 1
$$;

-- The nodes whose ranges contain ticket: ticket itself, then ticket + lowbit(ticket), and so
-- on, below 2^31. Written without a loop: for each clear bit above the lowest set one, the
-- ticket's higher bits with that bit set.
CREATE FUNCTION booking.waitlist_tree_nodes_covering(ticket bigint) RETURNS SETOF bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ticket
    UNION ALL
    SELECT ((ticket >> bit) | 1) << bit FROM generate_series(1, 30) AS bit
    WHERE (ticket >> bit) & 1 = 0 AND ticket & ((1::bigint << bit) - 1) <> 0
$$;

-- The 1-based place in line of the WAITLISTED booking holding `ticket`.
CREATE FUNCTION booking.waitlist_position(conference bigint, ticket bigint) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(waiting), 0)::integer FROM booking.waitlist_tree
    WHERE conference_id = conference AND node IN (SELECT booking.waitlist_tree_nodes_summing(ticket))
$$;

-- Bookings joined (+1) or left (-1) lines at these tickets: count each line and update its tree.
CREATE FUNCTION booking.record_line_changes(conferences bigint[], tickets bigint[], deltas integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF conferences IS NULL THEN
        RETURN;
    END IF;
    UPDATE booking.conference_seats AS s SET waiting = s.waiting + line.delta
    FROM (
        SELECT conference_id, sum(delta)::integer AS delta FROM unnest(conferences, deltas) AS c(conference_id, delta)
        GROUP BY conference_id HAVING sum(delta) <> 0
    ) AS line
    WHERE s.conference_id = line.conference_id;
    -- An empty line's nodes are all zero; dropping them makes closing a long line at the start cheap.
    DELETE FROM booking.waitlist_tree AS t USING booking.conference_seats AS s
    WHERE t.conference_id = s.conference_id AND s.waiting = 0 AND s.conference_id = ANY (conferences);
    INSERT INTO booking.waitlist_tree AS t (conference_id, node, waiting)
    SELECT c.conference_id, node, sum(c.delta)
    FROM unnest(conferences, tickets, deltas) AS c(conference_id, ticket, delta)
    JOIN booking.conference_seats AS s ON s.conference_id = c.conference_id AND s.waiting > 0
    CROSS JOIN LATERAL booking.waitlist_tree_nodes_covering(c.ticket) AS node
    GROUP BY c.conference_id, node
    HAVING sum(c.delta) <> 0
    ON CONFLICT (conference_id, node) DO UPDATE SET waiting = t.waiting + excluded.waiting;
END
$$;

CREATE FUNCTION booking.count_new_booking_in_line() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM booking.record_line_changes(ARRAY[NEW.conference_id], ARRAY[NEW.join_order], ARRAY[1]);
    RETURN NULL;
END
$$;

-- Row by row for inserts: a booking that is CONFIRMED at once costs nothing here.
CREATE TRIGGER count_joining AFTER INSERT ON booking.bookings
FOR EACH ROW WHEN (NEW.status = 'WAITLISTED')
EXECUTE FUNCTION booking.count_new_booking_in_line();

CREATE FUNCTION booking.count_line_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A row still waiting at the same ticket contributes -1 and +1, which cancel out.
    PERFORM booking.record_line_changes(array_agg(conference_id), array_agg(ticket), array_agg(delta))
    FROM (
        SELECT conference_id, join_order AS ticket, -1 AS delta FROM old_rows WHERE status = 'WAITLISTED'
        UNION ALL
        SELECT conference_id, join_order, 1 FROM new_rows WHERE status = 'WAITLISTED'
    ) AS changes;
    RETURN NULL;
END
$$;

-- Once per statement for updates: closing a line of thousands at the start is one change set.
CREATE TRIGGER count_moves AFTER UPDATE ON booking.bookings
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION booking.count_line_changes();


-- === Booking ======================================================================================
--
-- One statement for the whole use case, so that the conference's ledger row is locked
-- only for the few microseconds the server needs, never across a network round trip.
-- Run as a statement of its own (autocommit), it costs one round trip, commit included.
--
-- The conference is found by `conference_key` (its name_key), or by `conference_id`
-- when given. `outcome` is BOOKED, or why not, with nothing changed:
--   CONFERENCE_UNKNOWN  no copy here yet: the caller copies it from the conference service
--   USER_NOT_FOUND, CONFERENCE_STARTED, ALREADY_BOOKED,
--   OVERLAPPING_BOOKING (`detail`: the other conference's name),
--   HAS_NEIGHBOURS      the user waits for (or is offered) an overlapping conference, which a
--                       confirmation would cancel, with events: unless `neighbours_locked` (the
--                       caller holds every lock involved and does that itself), refused.
CREATE FUNCTION booking.book(
    p_user_id text,
    p_conference_key text,
    p_conference_id bigint,
    p_now timestamptz,
    p_neighbours_locked boolean,
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

    -- The user's lock serializes the user's own requests: what is read below stays true until the commit.
    PERFORM FROM booking.users WHERE user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'USER_NOT_FOUND';
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

    -- The ledger's lock, held until the commit: taken as late as possible.
    SELECT * INTO seats FROM booking.conference_seats WHERE conference_id = seats.conference_id FOR UPDATE;
    -- A seat is taken directly only while nobody waits: a freed seat belongs to the head of the line.
    IF seats.seats_held < seats.slots AND seats.waiting = 0 THEN
        UPDATE booking.conference_seats SET seats_held = seats_held + 1 WHERE conference_id = seats.conference_id;
        new_status := 'CONFIRMED';
    ELSE
        new_status := 'WAITLISTED';  -- the triggers give it its ticket and count it
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
