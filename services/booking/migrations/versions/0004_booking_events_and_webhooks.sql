-- One event per booking change, recorded by the database itself in the transaction of the change.
--
-- The type follows from the new status. The reason is what the service layer said before the
-- change (`SET LOCAL booking.change_reason`, transaction-local); a booking made by booking.book()
-- is the user's own doing. The booking is stored as the change left it, its place in line
-- included (the BEFORE triggers of migration 0002 have already given it its ticket).
-- NOTIFY, delivered only at commit, wakes the streams watching the booking and the webhook
-- dispatcher; both read the table, so a lost notification delays, never loses, an event.
CREATE FUNCTION booking.record_booking_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO booking.booking_events (booking_id, type, reason, occurred_at, status, offer_deadline, waitlist_position)
    VALUES (
        NEW.booking_id,
        CASE NEW.status
            WHEN 'CONFIRMED' THEN 'booking.confirmed'
            WHEN 'WAITLISTED' THEN 'booking.waitlisted'
            WHEN 'CONFIRMATION_PENDING' THEN 'booking.offered'
            WHEN 'CANCELED' THEN 'booking.canceled'
        END,
        coalesce(nullif(current_setting('booking.change_reason', true), ''), 'user'),
        NEW.updated_at,
        NEW.status,
        NEW.offer_deadline,
        CASE WHEN NEW.status = 'WAITLISTED' THEN booking.waitlist_position(NEW.conference_id, NEW.join_order) END
    );
    PERFORM pg_notify('confbook_booking_events', NEW.booking_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER records_new_booking AFTER INSERT ON booking.bookings
FOR EACH ROW EXECUTE FUNCTION booking.record_booking_event();

CREATE TRIGGER records_booking_change AFTER UPDATE OF status ON booking.bookings
FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
EXECUTE FUNCTION booking.record_booking_event();
