-- One event per booking change, and its webhook deliveries, recorded by the database itself in
-- the transaction of the change.
--
-- As in migration 0004: the type follows from the new status; the reason is what the service
-- layer said before the change (`SET LOCAL booking.change_reason`), a booking made by
-- booking.book() being the user's own doing; the booking is stored as the change left it.
--
-- New here (docs/adr/0017): the event's deliveries are made at once, one per matching webhook,
-- and nothing is NOTIFYed. PostgreSQL serializes the commits of every transaction that NOTIFYs,
-- which made bookings wait on each other; the streams and the webhook sender poll instead.
-- The webhooks are read FOR KEY SHARE: one deleted meanwhile is skipped (its delete waits for
-- this transaction, or this for the delete), never a foreign-key error that fails the booking.
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
    INSERT INTO booking.booking_events (booking_id, type, reason, occurred_at, status, offer_deadline, waitlist_position)
    VALUES (
        NEW.booking_id,
        event_type,
        coalesce(nullif(current_setting('booking.change_reason', true), ''), 'user'),
        NEW.updated_at,
        NEW.status,
        NEW.offer_deadline,
        CASE WHEN NEW.status = 'WAITLISTED' THEN booking.waitlist_position(NEW.conference_id, NEW.join_order) END
    )
    RETURNING sequence INTO recorded;

    INSERT INTO booking.webhook_deliveries (webhook_id, event_sequence)
    SELECT webhook_id, recorded
    FROM booking.webhooks
    WHERE (event_types IS NULL OR event_type = ANY (event_types))
      AND (conference_id IS NULL OR conference_id = NEW.conference_id)
    FOR KEY SHARE;
    RETURN NULL;
END
$$;
