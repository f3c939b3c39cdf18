// How times, statuses and counts read on the page: in the viewer's own time zone and language.

import type { Status } from "./api";

// (dateStyle and timeStyle cannot name the time zone: the parts are spelled out.)
const when = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  timeZoneName: "short",
});
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const endClock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZoneName: "short" });

export function moment(iso: string): string {
  return when.format(new Date(iso));
}

export function span(startIso: string, endIso: string): string {
  const start = new Date(startIso);
  const end = new Date(endIso);
  const sameDay = start.toDateString() === end.toDateString();
  return `${when.format(start)} – ${sameDay ? endClock.format(end) : when.format(end)}`;
}

export function timeOfDay(iso: string): string {
  return clock.format(new Date(iso));
}

/** "12:04" (minutes:seconds) or "1:02:03" left until `deadline`; "0:00" once it has passed. */
export function remaining(deadline: Date, now = new Date()): string {
  const total = Math.max(0, Math.ceil((deadline.getTime() - now.getTime()) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

export const STATUS_TEXT: Record<Status, string> = {
  CONFIRMED: "Confirmed",
  WAITLISTED: "On the waitlist",
  CONFIRMATION_PENDING: "Seat offered",
  CANCELED: "Canceled",
};

export const REASON_TEXT: Record<string, string> = {
  user: "on request",
  overlap: "another booking at the same time was confirmed",
  offer_expired: "the offer expired",
  conference_started: "the conference started",
};

export function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
