-- The booking transaction as one stored function, and the bookkeeping of every line.
--
-- Lock order, as everywhere in this service: the user row, then seat ledger rows
-- (ascending conference id), then booking rows. The triggers below touch a
-- ledger row and its tree only while the transaction holds that ledger's lock.


-- === Lines: tickets, counts and the position tree ================================================
--
-- Each line numbers its bookings with tickets 1, 2, 3... in the order they joined
-- (FIFO), from `conference_seats.tickets_issued`. `conference_seats.waiting` is its
-- length. `waitlist_tree` is a Fenwick (binary indexed) tree over the tickets:
-- node k holds how many WAITLISTED bookings have a ticket in (k - lowbit(k), k].
-- A position is the sum of the nodes its ticket's prefix decomposes into, one per
-- set bit of the ticket: at most 31 rows, however long the line.
--
-- Nodes above the newest ticket are never read, so they are not kept: a booking
-- joins at the end of its line and creates just its own node, whose value it reads
-- from the nodes below (on average one). A booking leaving updates the nodes that
-- cover its ticket (at most log2 of the line's tickets). A line that empties drops
-- its tree, which makes closing a long line at the start cheap.

-- The walks of a Fenwick tree, as textbooks write them. PL/pgSQL keeps the plans of the
-- statements that use them; a plain SQL function would be planned again at every call.

-- The nodes whose sums make up the prefix 1..ticket.
CREATE FUNCTION booking.waitlist_tree_nodes_summing(ticket bigint) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    nodes bigint[] := '{}';
BEGIN
    WHILE ticket > 0 LOOP
        nodes := nodes || ticket;
        ticket := ticket - (ticket & -ticket);
    END LOOP;
    RETURN nodes;
END
$$;

-- The nodes whose ranges contain ticket (below 2^31, the largest ticket).
CREATE FUNCTION booking.waitlist_tree_nodes_covering(ticket bigint) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    nodes bigint[] := '{}';
BEGIN
    WHILE ticket < 2147483648 LOOP
        nodes := nodes || ticket;
        ticket := ticket + (ticket & -ticket);
    END LOOP;
    RETURN nodes;
END
$$;

-- The nodes that, with ticket itself, make up node ticket's range (ticket - lowbit(ticket), ticket]:
-- those of the prefix 1..ticket-1 above ticket - lowbit(ticket).
CREATE FUNCTION booking.waitlist_tree_nodes_within(ticket bigint) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN ARRAY(
        SELECT node FROM unnest(booking.waitlist_tree_nodes_summing(ticket - 1)) AS node
        WHERE node > ticket - (ticket & -ticket)
    );
END
$$;

-- The 1-based place in line of the WAITLISTED booking holding `ticket`.
CREATE FUNCTION booking.waitlist_position(conference bigint, ticket bigint) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
    position integer;
BEGIN
    SELECT coalesce(sum(waiting), 0) INTO position FROM booking.waitlist_tree
    WHERE conference_id = conference AND node = ANY (booking.waitlist_tree_nodes_summing(ticket));
    RETURN position;
END
$$;

-- A booking joining a line (new, or back after its offer expired): the next ticket, the
-- line's count, and the ticket's node. Runs before the row is written, so the CHECK that
-- a WAITLISTED booking has a ticket sees it.
CREATE FUNCTION booking.join_waitlist() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE booking.conference_seats SET tickets_issued = tickets_issued + 1, waiting = waiting + 1
    WHERE conference_id = NEW.conference_id
    RETURNING tickets_issued INTO NEW.join_order;
    INSERT INTO booking.waitlist_tree (conference_id, node, waiting)
    SELECT NEW.conference_id, NEW.join_order, 1 + coalesce(sum(waiting), 0)
    FROM booking.waitlist_tree
    WHERE conference_id = NEW.conference_id
      AND node = ANY (booking.waitlist_tree_nodes_within(NEW.join_order));
    RETURN NEW;
END
$$;

CREATE TRIGGER joins_waitlist BEFORE INSERT ON booking.bookings
FOR EACH ROW WHEN (NEW.status = 'WAITLISTED')
EXECUTE FUNCTION booking.join_waitlist();

CREATE TRIGGER rejoins_waitlist BEFORE UPDATE OF status ON booking.bookings
FOR EACH ROW WHEN (NEW.status = 'WAITLISTED' AND OLD.status <> 'WAITLISTED')
EXECUTE FUNCTION booking.join_waitlist();

-- Bookings that left a line in one statement (offered a seat, canceled, or the whole line
-- at the start): once per statement, so closing a line of thousands is one change set.
CREATE FUNCTION booking.leave_waitlist() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    line record;
BEGIN
    FOR line IN
        SELECT o.conference_id, array_agg(o.join_order) AS tickets
        FROM old_rows AS o JOIN new_rows AS n ON n.booking_id = o.booking_id
        WHERE o.status = 'WAITLISTED' AND n.join_order IS DISTINCT FROM o.join_order
        GROUP BY o.conference_id
    LOOP
        UPDATE booking.conference_seats AS s SET waiting = s.waiting - cardinality(line.tickets)
        WHERE s.conference_id = line.conference_id;
        IF (SELECT waiting FROM booking.conference_seats WHERE conference_id = line.conference_id) = 0 THEN
            DELETE FROM booking.waitlist_tree WHERE conference_id = line.conference_id;
        ELSE
            UPDATE booking.waitlist_tree AS t SET waiting = t.waiting - covered.leaving
            FROM (
                SELECT node, count(*) AS leaving
                FROM unnest(line.tickets) AS ticket, unnest(booking.waitlist_tree_nodes_covering(ticket)) AS node
                GROUP BY node
            ) AS covered
            WHERE t.conference_id = line.conference_id AND t.node = covered.node;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER leaves_waitlist AFTER UPDATE ON booking.bookings
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION booking.leave_waitlist();


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
