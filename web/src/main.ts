// The web page: a conference-goer's catalogue, interests, bookings (live) and recommendations, and an
// organiser's conferences; every action through the public HTTP API, as any other client.

import { Api, ApiError, path, type Booking, type BookingEvent, type Conference, type User } from "./api";
import { Session, type PageConfig } from "./auth";
import { h, replaceChildren, uid } from "./dom";
import { REASON_TEXT, STATUS_TEXT, plural, remaining, span, timeOfDay } from "./format";
import { followEvents } from "./sse";

// How often what has no stream of its own is read again: a waiting booking's position (a position moves
// without an event), and an organiser's lists (no stream per conference; docs/adr/0023).
const POSITION_REFRESH_MS = 2000;
const ORGANISER_REFRESH_MS = 2000;
const FOLLOW_UP_MS = 500;
const CATALOGUE_SHOWN = 20;
const ACTIVE: ReadonlySet<string> = new Set(["CONFIRMED", "WAITLISTED", "CONFIRMATION_PENDING"]);

interface View {
  title: string;
  render(main: HTMLElement, scope: Scope): Promise<void> | void;
}

/** What a view started (streams, timers): all stopped when the view is left. */
class Scope {
  private readonly controller = new AbortController();
  private readonly timers: number[] = [];

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.controller.signal.aborted;
  }

  every(ms: number, task: () => void | Promise<void>): void {
    let running = false;
    this.timers.push(
      window.setInterval(() => {
        if (running || document.hidden) return;
        running = true;
        void Promise.resolve(task()).finally(() => (running = false));
      }, ms),
    );
  }

  close(): void {
    this.controller.abort();
    this.timers.forEach((timer) => window.clearInterval(timer));
  }
}

class App {
  readonly api: Api;
  user: User | null = null;
  private scope = new Scope();
  private readonly main = document.getElementById("main") as HTMLElement;
  private readonly announcer = document.getElementById("announcer") as HTMLElement;

  constructor(readonly session: Session) {
    this.api = new Api(() => session.token);
  }

  async start(): Promise<void> {
    let returnTo: string | null = null;
    try {
      returnTo = await this.session.completeSignIn();
    } catch (error) {
      this.announce(`Sign-in failed: ${(error as Error).message}`);
    }
    if (this.session.identity) await this.findUser();
    window.addEventListener("hashchange", () => void this.route());
    if (returnTo && returnTo !== location.hash) location.hash = returnTo;
    else await this.route();
  }

  get signedIn(): boolean {
    return this.session.identity !== null;
  }

  get organiser(): boolean {
    const roles = this.session.identity?.roles ?? [];
    return roles.includes("organizer") || roles.includes("admin");
  }

  /** The user the signed-in subject created, if any: the one remembered for this subject, or one named after it. */
  async findUser(): Promise<void> {
    const subject = this.session.identity?.subject ?? "";
    const remembered = localStorage.getItem(userKey(subject));
    const candidate = remembered ?? userIdFrom(subject);
    this.user = null;
    if (!candidate) return;
    try {
      this.user = await this.api.get<User>(path`/user/${candidate}`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
  }

  rememberUser(user: User): void {
    this.user = user;
    const subject = this.session.identity?.subject;
    // Not a secret: which of the API's users this subject created, so the page finds it next time.
    if (subject) localStorage.setItem(userKey(subject), user.user_id);
  }

  announce(message: string): void {
    this.announcer.textContent = "";
    window.setTimeout(() => (this.announcer.textContent = message), 50);
  }

  async route(): Promise<void> {
    this.scope.close();
    this.scope = new Scope();
    const hash = location.hash || "#/";
    if (!hash.startsWith("#/")) return; // the skip link and other in-page anchors
    const [, section, ...rest] = hash.slice(1).split("/");
    const view = this.viewFor(section ?? "", rest.map(decodeURIComponent).join("/"));
    this.renderHeader(section ?? "");
    document.title = `${view.title} · Confbook`;
    const main = this.main;
    main.replaceChildren(h("p", {}, "Loading…"));
    try {
      await view.render(main, this.scope);
    } catch (error) {
      replaceChildren(main, h("h1", { tabindex: "-1" }, view.title), this.problem(error));
    }
    const heading = main.querySelector("h1");
    if (heading instanceof HTMLElement && document.activeElement === document.body) heading.focus();
  }

  private viewFor(section: string, rest: string): View {
    switch (section) {
      case "bookings":
        return new MyBookings(this);
      case "interests":
        return new Interests(this);
      case "recommendations":
        return new Recommendations(this);
      case "organise":
        return rest ? new ManageConference(this, rest) : new Organise(this);
      default:
        return new Catalogue(this);
    }
  }

  private renderHeader(section: string): void {
    const links: [string, string][] = [
      ["", "Conferences"],
      ["bookings", "My bookings"],
      ["interests", "Interests"],
      ["recommendations", "Recommendations"],
    ];
    if (this.organiser) links.push(["organise", "Organise"]);
    replaceChildren(
      document.getElementById("nav") as HTMLElement,
      links.map(([target, label]) =>
        h("li", {}, h("a", { href: `#/${target}`, "aria-current": target === section ? "page" : undefined }, label)),
      ),
    );
    const identity = this.session.identity;
    replaceChildren(
      document.getElementById("who") as HTMLElement,
      identity
        ? [
            h("span", {}, `Signed in as ${identity.subject}${identity.roles.length ? ` (${identity.roles.join(", ")})` : ""}`),
            h("button", { type: "button", class: "secondary", onclick: () => this.signOut() }, "Sign out"),
          ]
        : h("button", { type: "button", onclick: () => void this.signIn() }, "Sign in"),
    );
  }

  signIn(): Promise<void> {
    return this.session.signIn(location.hash || "#/");
  }

  private signOut(): void {
    this.session.signOut();
    this.user = null;
    this.announce("Signed out");
    void this.route();
  }

  /** A paragraph for what went wrong; a 401 offers to sign in again. */
  problem(error: unknown): HTMLElement {
    if (error instanceof ApiError && error.status === 401) {
      this.session.signOut();
      return h(
        "div",
        { role: "alert" },
        h("p", {}, "Your sign-in has expired or was refused."),
        h("button", { type: "button", onclick: () => void this.signIn() }, "Sign in again"),
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    return h("p", { role: "alert", class: "error" }, message);
  }

  /** What a view that needs a signed-in user shows otherwise; null when there is one. */
  needsUser(): HTMLElement | null {
    if (!this.signedIn) {
      return h(
        "div",
        { class: "notice" },
        h("p", {}, "Sign in to see this."),
        h("button", { type: "button", onclick: () => void this.signIn() }, "Sign in"),
      );
    }
    if (!this.user) {
      return h("p", { class: "notice" }, "First ", h("a", { href: "#/interests" }, "register your interests"), ".");
    }
    return null;
  }
}

function userKey(subject: string): string {
  return `confbook.user-of.${subject}`;
}

/** A user id as the API accepts it (letters and digits, at most 64), from the subject's own letters and digits. */
function userIdFrom(subject: string): string {
  return Array.from(subject.normalize("NFC"))
    .filter((char) => /[\p{L}\p{N}]/u.test(char))
    .join("")
    .slice(0, 64);
}

function heading(text: string): HTMLHeadingElement {
  return h("h1", { tabindex: "-1" }, text);
}

// --- conferences ---------------------------------------------------------------------------------------------

async function allConferences(api: Api): Promise<Conference[]> {
  const found: Conference[] = [];
  let token = "";
  for (let page = 0; page < 50; page += 1) {
    const reply = await api.get<{ conferences: Conference[]; next_page_token: string }>(
      `/conferences?page_size=100${token ? `&page_token=${encodeURIComponent(token)}` : ""}`,
    );
    found.push(...reply.conferences);
    token = reply.next_page_token;
    if (!token) break;
  }
  return found;
}

function matches(conference: Conference, query: string): boolean {
  const words = query.toLocaleLowerCase().split(/\s+/).filter(Boolean);
  const text = [conference.name, ...conference.topics].join(" ").toLocaleLowerCase();
  return words.every((word) => text.includes(word));
}

function conferenceCard(app: App, conference: Conference): HTMLElement {
  const titleId = uid("conference");
  const message = h("p", { class: "message", role: "status" });
  const seatsLeft = h("dd", { class: "seats" });
  const inLine = h("dd", { class: "line" });
  const drawSeats = (latest: Conference): void => {
    seatsLeft.textContent = `${latest.available_slots} of ${latest.slots}`;
    inLine.textContent = plural(latest.waitlist_length ?? 0, "person", "people");
  };
  const seats =
    conference.available_slots === undefined
      ? null
      : [h("dt", {}, "Seats left"), seatsLeft, h("dt", {}, "In line"), inLine];
  if (seats) drawSeats(conference);
  const actions = h("div", { class: "actions" });
  if (!app.signedIn) {
    actions.append(h("button", { type: "button", onclick: () => void app.signIn() }, "Sign in to book"));
  } else if (app.user) {
    const button = h("button", { type: "button", "aria-describedby": titleId }, "Book");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const booked = await app.api.post<{ status: string; message: string; waitlist_position: number | null }>(
          "/book",
          { name: conference.name, user_id: app.user?.user_id },
        );
        replaceChildren(message, `${booked.message}. `, h("a", { href: "#/bookings" }, "See my bookings"));
        if (seats) drawSeats(await app.api.get<Conference>(path`/conference/${conference.name}`));
      } catch (error) {
        replaceChildren(message, app.problem(error));
        button.disabled = false;
      }
    });
    actions.append(button);
  } else {
    actions.append(h("a", { href: "#/interests" }, "Register your interests to book"));
  }
  if (app.organiser) {
    actions.append(h("a", { href: `#/organise/${encodeURIComponent(conference.name)}` }, "Manage"));
  }
  return h(
    "article",
    { class: "card", "aria-labelledby": titleId, "data-conference": conference.name },
    h("h2", { id: titleId }, conference.name),
    h(
      "dl",
      {},
      h("dt", {}, "When"),
      h("dd", {}, span(conference.start, conference.end)),
      h("dt", {}, "Where"),
      h("dd", {}, conference.location),
      conference.topics.length ? [h("dt", {}, "Topics"), h("dd", {}, conference.topics.join(", "))] : null,
      conference.matching_topics?.length
        ? [h("dt", {}, "Matches your"), h("dd", {}, conference.matching_topics.join(", "))]
        : null,
      seats,
    ),
    actions,
    message,
  );
}

class Catalogue implements View {
  title = "Conferences";

  constructor(private readonly app: App) {}

  async render(main: HTMLElement): Promise<void> {
    const searchId = uid("search");
    const input = h("input", { id: searchId, type: "search", name: "q", autocomplete: "off" });
    const summary = h("p", { role: "status", class: "summary" });
    const list = h("ul", { class: "cards", "aria-label": "Upcoming conferences" });
    const form = h(
      "form",
      { role: "search", class: "search" },
      h("label", { for: searchId }, "Search by name or topic"),
      input,
      h("button", { type: "submit" }, "Search"),
    );
    replaceChildren(main, heading(this.title), form, summary, list);
    let shown = 0;
    let typing: number | undefined;
    // Listening before anything loads: a search typed early is not a form sent away.
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      window.clearTimeout(typing);
      void show();
    });
    input.addEventListener("input", () => {
      window.clearTimeout(typing);
      typing = window.setTimeout(() => void show(), 250);
    });
    const now = Date.now();
    const upcoming = allConferences(this.app.api).then((all) =>
      all
        .filter((conference) => Date.parse(conference.start) > now)
        .sort((a, b) => Date.parse(a.start) - Date.parse(b.start) || a.name.localeCompare(b.name)),
    );
    const show = async (): Promise<void> => {
      const round = (shown += 1);
      const query = input.value.trim();
      const found = (await upcoming).filter((conference) => matches(conference, query));
      const first = found.slice(0, CATALOGUE_SHOWN);
      const details = await Promise.all(
        first.map((each) => this.app.api.get<Conference>(path`/conference/${each.name}`).catch(() => each)),
      );
      if (round !== shown) return; // a later search has answered
      summary.textContent =
        found.length > first.length
          ? `${found.length} conferences match; the first ${first.length} are shown.`
          : `${plural(found.length, "conference", "conferences")}${query ? " match" : " coming up"}.`;
      replaceChildren(list, details.map((conference) => h("li", {}, conferenceCard(this.app, conference))));
    };
    await show();
  }
}

class Recommendations implements View {
  title = "Recommended for you";

  constructor(private readonly app: App) {}

  async render(main: HTMLElement): Promise<void> {
    const missing = this.app.needsUser();
    if (missing) return replaceChildren(main, heading(this.title), missing);
    const user = this.app.user as User;
    const list = h("ul", { class: "cards", "aria-label": "Recommended conferences" });
    const load = async (): Promise<void> => {
      const reply = await this.app.api.get<{ conferences: Conference[] }>(
        path`/user/${user.user_id}/recommendations` + "?limit=20",
      );
      replaceChildren(
        list,
        reply.conferences.length
          ? reply.conferences.map((conference) => h("li", {}, conferenceCard(this.app, conference)))
          : h("li", {}, "Nothing to recommend now: no upcoming conference you have not booked shares your interests."),
      );
    };
    replaceChildren(main, heading(this.title), h("p", {}, `From your interests: ${user.topics.join(", ") || "none"}.`), list);
    await load();
  }
}

// --- a form whose fields show the API's own validation messages ----------------------------------------------

interface FieldSpec {
  name: string;
  label: string;
  type?: string;
  hint?: string;
  value?: string;
  required?: boolean;
  attributes?: Record<string, string>;
}

class ApiForm {
  readonly element: HTMLFormElement;
  private readonly inputs = new Map<string, HTMLInputElement>();
  private readonly errors = new Map<string, HTMLElement>();
  private readonly formError = h("div", { class: "form-error" });

  constructor(
    label: string,
    fields: FieldSpec[],
    submitText: string,
    onSubmit: (values: Record<string, string>) => Promise<void>,
  ) {
    const rows = fields.map((field) => {
      const id = uid(field.name);
      const errorId = `${id}-error`;
      const hintId = field.hint ? `${id}-hint` : undefined;
      const input = h("input", {
        id,
        name: field.name,
        type: field.type ?? "text",
        value: field.value,
        required: field.required ?? true,
        "aria-describedby": [hintId, errorId].filter(Boolean).join(" "),
        ...field.attributes,
      });
      const error = h("p", { id: errorId, class: "field-error" });
      this.inputs.set(field.name, input);
      this.errors.set(field.name, error);
      return h(
        "div",
        { class: "field" },
        h("label", { for: id }, field.label),
        field.hint ? h("p", { id: hintId, class: "hint" }, field.hint) : null,
        input,
        error,
      );
    });
    const submit = h("button", { type: "submit" }, submitText);
    this.element = h("form", { "aria-label": label, novalidate: true }, rows, this.formError, submit);
    this.element.addEventListener("submit", async (event) => {
      event.preventDefault();
      this.clear();
      submit.disabled = true;
      const values = Object.fromEntries([...this.inputs].map(([name, input]) => [name, input.value.trim()]));
      try {
        await onSubmit(values);
      } catch (error) {
        this.show(error);
      } finally {
        submit.disabled = false;
      }
    });
  }

  value(name: string): string {
    return this.inputs.get(name)?.value ?? "";
  }

  clear(): void {
    for (const [name, error] of this.errors) {
      error.textContent = "";
      this.inputs.get(name)?.removeAttribute("aria-invalid");
    }
    this.formError.replaceChildren();
  }

  /** The API's message next to the field it names (focused), or above the button. */
  show(error: unknown, field?: string): void {
    const named = field ?? (error instanceof ApiError ? error.field : null) ?? fieldOfConflict(error);
    const input = named ? this.inputs.get(named) : undefined;
    if (input && error instanceof Error) {
      (this.errors.get(named as string) as HTMLElement).textContent = error.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    } else {
      this.formError.replaceChildren(errorBlock(error));
    }
  }
}

function fieldOfConflict(error: unknown): string | null {
  if (!(error instanceof ApiError)) return null;
  const byCode: Record<string, string> = {
    CONFERENCE_EXISTS: "name",
    USER_EXISTS: "user_id",
    SLOTS_BELOW_HELD: "slots",
  };
  return byCode[error.code] ?? null;
}

function errorBlock(error: unknown): HTMLElement {
  const message = error instanceof Error ? error.message : String(error);
  return h("p", { role: "alert", class: "error" }, message);
}

function topicsFrom(text: string): string[] {
  return text
    .split(",")
    .map((topic) => topic.trim())
    .filter(Boolean);
}

/** A datetime-local value (the viewer's own time) as the API's ISO 8601 UTC; empty stays empty for the API to name. */
function utcFromLocal(value: string): string {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// --- interests -----------------------------------------------------------------------------------------------

class Interests implements View {
  title = "Your interests";

  constructor(private readonly app: App) {}

  render(main: HTMLElement): void {
    if (!this.app.signedIn) return replaceChildren(main, heading(this.title), this.app.needsUser());
    const user = this.app.user;
    if (user) {
      return replaceChildren(
        main,
        heading(this.title),
        h("p", {}, `You book as ${user.user_id}.`),
        user.topics.length
          ? [h("p", {}, "Your interests:"), h("ul", { class: "topics" }, user.topics.map((topic) => h("li", {}, topic)))]
          : h("p", {}, "You named no interests."),
        h("p", {}, h("a", { href: "#/recommendations" }, "See what they recommend")),
      );
    }
    const form = new ApiForm(
      "Register your interests",
      [
        {
          name: "user_id",
          label: "Your user id",
          hint: "Letters and digits, up to 64.",
          value: userIdFrom(this.app.session.identity?.subject ?? ""),
          attributes: { autocomplete: "username" },
        },
        { name: "topics", label: "Topics you care about", hint: "Separated by commas.", required: false },
      ],
      "Register",
      async (values) => {
        const created = await this.app.api.post<User>("/user", {
          user_id: values.user_id,
          topics: topicsFrom(values.topics),
        });
        this.app.rememberUser(created);
        this.app.announce(`Registered as ${created.user_id}`);
        location.hash = "#/recommendations";
      },
    );
    replaceChildren(main, heading(this.title), h("p", {}, "Register once to book: your id and what interests you."), form.element);
  }
}

// --- my bookings, live ---------------------------------------------------------------------------------------

class BookingCard {
  readonly element: HTMLElement;
  private readonly status = h("p", { class: "status", "aria-live": "polite" });
  private readonly detail = h("div", { class: "detail" });
  private readonly actions = h("div", { class: "actions" });
  private readonly message = h("p", { class: "message", role: "status" });
  private booking: Booking;
  private note = "";
  private countdown: number | undefined;

  constructor(
    private readonly app: App,
    booking: Booking,
    private readonly scope: Scope,
    conference: Conference | null,
  ) {
    this.booking = booking;
    const titleId = uid("booking");
    this.element = h(
      "article",
      { class: "card booking", "aria-labelledby": titleId, "data-booking-id": booking.booking_id },
      h("h2", { id: titleId }, booking.conference_name),
      conference ? h("p", { class: "when" }, span(conference.start, conference.end)) : null,
      this.status,
      this.detail,
      this.actions,
      this.message,
    );
    this.draw();
    if (ACTIVE.has(booking.status)) this.follow();
  }

  private follow(): void {
    const id = this.booking.booking_id;
    void followEvents(`/booking/${id}/events`, {
      headers: () => this.app.api.headers(),
      signal: this.scope.signal,
      onRefused: (status) => {
        if (status === 401) replaceChildren(this.message, this.app.problem(new ApiError(401, "UNAUTHENTICATED", "")));
      },
      onMessage: (message) => {
        if (message.event === "booking") {
          this.update(JSON.parse(message.data) as Booking);
        } else {
          const event = JSON.parse(message.data) as BookingEvent;
          this.update(event.data.booking, event);
        }
      },
    });
    // A position moves when someone ahead leaves, which is no change of this booking: no event says it.
    this.scope.every(POSITION_REFRESH_MS, async () => {
      if (this.booking.status !== "WAITLISTED") return;
      try {
        this.update(await this.app.api.get<Booking>(`/booking/${id}`));
      } catch {
        // the stream and the next read carry on
      }
    });
  }

  private update(booking: Booking, event?: BookingEvent): void {
    const before = this.booking.status;
    this.booking = booking;
    if (event) {
      const reason = event.data.reason ? REASON_TEXT[event.data.reason] ?? event.data.reason : "";
      // An expiry stays said after a new offer: the person may have missed the first.
      if (event.type === "booking.waitlisted" && event.data.reason === "offer_expired") {
        this.note = `An offer expired unconfirmed at ${timeOfDay(event.occurred_at)}; the booking went back to the end of the line.`;
      } else if (event.type === "booking.canceled") {
        this.note = `Canceled at ${timeOfDay(event.occurred_at)}${reason ? `: ${reason}` : ""}.`;
      } else if (event.type === "booking.confirmed") {
        this.note = "";
      }
    }
    this.draw(before !== booking.status);
  }

  private draw(statusChanged = true): void {
    const booking = this.booking;
    window.clearInterval(this.countdown);
    this.element.dataset.status = booking.status;
    const position = booking.status === "WAITLISTED" && booking.waitlist_position !== null;
    const statusText = `${STATUS_TEXT[booking.status]}${position ? `: number ${booking.waitlist_position} in line` : ""}`;
    if (statusChanged || this.status.textContent !== statusText) this.status.textContent = statusText;
    this.detail.replaceChildren();
    if (this.note) this.detail.append(h("p", { class: "note" }, this.note));
    if (booking.status === "CONFIRMATION_PENDING" && booking.confirmation_deadline) {
      const deadline = new Date(booking.confirmation_deadline);
      const timer = h("span", { role: "timer", class: "countdown" });
      const offer = h(
        "p",
        { class: "offer" },
        `A seat is yours if you confirm by ${timeOfDay(booking.confirmation_deadline)}: `,
        timer,
        " left.",
      );
      const tick = (): void => {
        timer.textContent = remaining(deadline);
        if (deadline.getTime() <= Date.now()) {
          window.clearInterval(this.countdown);
          offer.replaceChildren(`The offer's deadline passed at ${timeOfDay(booking.confirmation_deadline as string)}.`);
          this.actions.querySelector<HTMLButtonElement>("button.confirm")?.setAttribute("disabled", "");
        }
      };
      this.detail.append(offer);
      tick();
      this.countdown = window.setInterval(tick, 1000);
      this.scope.signal.addEventListener("abort", () => window.clearInterval(this.countdown));
    }
    this.actions.replaceChildren();
    if (booking.status === "CONFIRMATION_PENDING") {
      this.actions.append(this.button("Confirm", "/confirm", "confirm", !booking.can_confirm));
    }
    if (ACTIVE.has(booking.status)) this.actions.append(this.button("Cancel booking", "/cancel", "secondary cancel"));
  }

  private button(label: string, endpoint: string, className: string, disabled = false): HTMLButtonElement {
    const button = h("button", { type: "button", class: className, disabled }, label);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const changed = await this.app.api.post<Booking & { message: string }>(endpoint, {
          booking_id: this.booking.booking_id,
        });
        this.message.textContent = `${changed.message}.`;
        this.update(changed);
      } catch (error) {
        replaceChildren(this.message, this.app.problem(error));
        button.disabled = false;
      }
    });
    return button;
  }
}

class MyBookings implements View {
  title = "My bookings";

  constructor(private readonly app: App) {}

  async render(main: HTMLElement, scope: Scope): Promise<void> {
    const missing = this.app.needsUser();
    if (missing) return replaceChildren(main, heading(this.title), missing);
    const user = this.app.user as User;
    const reply = await this.app.api.get<{ bookings: Booking[] }>(path`/user/${user.user_id}/bookings`);
    const names = [...new Set(reply.bookings.map((booking) => booking.conference_name))];
    const conferences = new Map(
      await Promise.all(
        names.map(async (name) => [name, await this.app.api.get<Conference>(path`/conference/${name}`).catch(() => null)] as const),
      ),
    );
    const active = reply.bookings.filter((booking) => ACTIVE.has(booking.status));
    const past = reply.bookings.filter((booking) => !ACTIVE.has(booking.status));
    const card = (booking: Booking): HTMLElement =>
      h("li", {}, new BookingCard(this.app, booking, scope, conferences.get(booking.conference_name) ?? null).element);
    replaceChildren(
      main,
      heading(this.title),
      h("p", {}, "Changes show here as they happen: a seat offered, your place in line, a deadline."),
      active.length
        ? h("ul", { class: "cards", "aria-label": "Active bookings" }, active.map(card))
        : h("p", {}, "No active booking. ", h("a", { href: "#/" }, "Find a conference"), "."),
      past.length
        ? h("details", {}, h("summary", {}, `Canceled (${past.length})`), h("ul", { class: "cards" }, past.map(card)))
        : null,
    );
  }
}

// --- organising ----------------------------------------------------------------------------------------------

class Organise implements View {
  title = "Organise";

  constructor(private readonly app: App) {}

  render(main: HTMLElement): void {
    if (!this.app.signedIn) return replaceChildren(main, heading(this.title), this.app.needsUser());
    const create = new ApiForm(
      "Create a conference",
      [
        { name: "name", label: "Name", hint: "Letters, digits and spaces; unique." },
        { name: "location", label: "Location" },
        { name: "start", label: "Starts (your time)", type: "datetime-local" },
        { name: "end", label: "Ends (your time)", type: "datetime-local", hint: "At most 12 hours after the start." },
        { name: "slots", label: "Seats", type: "number", attributes: { min: "1", inputmode: "numeric" } },
        { name: "topics", label: "Topics", hint: "Separated by commas; at most 10.", required: false },
      ],
      "Create conference",
      async (values) => {
        const slots = Number(values.slots);
        const created = await this.app.api.post<Conference>("/conference", {
          name: values.name,
          location: values.location,
          start: utcFromLocal(values.start),
          end: utcFromLocal(values.end),
          slots: values.slots === "" || !Number.isInteger(slots) ? values.slots : slots,
          topics: topicsFrom(values.topics),
        });
        this.app.announce(`Created ${created.name}`);
        location.hash = `#/organise/${encodeURIComponent(created.name)}`;
      },
    );
    const openId = uid("open");
    const open = h(
      "form",
      { "aria-label": "Open a conference" },
      h("label", { for: openId }, "Name of a conference you organise"),
      h("input", { id: openId, name: "name", required: true }),
      h("button", { type: "submit" }, "Open"),
    );
    open.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = (open.elements.namedItem("name") as HTMLInputElement).value.trim();
      if (name) location.hash = `#/organise/${encodeURIComponent(name)}`;
    });
    replaceChildren(
      main,
      heading(this.title),
      h("section", { "aria-labelledby": "create-heading" }, h("h2", { id: "create-heading" }, "Create a conference"), create.element),
      h("section", { "aria-labelledby": "open-heading" }, h("h2", { id: "open-heading" }, "Manage one"), open),
    );
  }
}

class ManageConference implements View {
  title: string;

  constructor(
    private readonly app: App,
    private readonly name: string,
  ) {
    this.title = name;
  }

  async render(main: HTMLElement, scope: Scope): Promise<void> {
    if (!this.app.signedIn) return replaceChildren(main, heading(this.title), this.app.needsUser());
    let conference = await this.app.api.get<Conference>(path`/conference/${this.name}`);
    const facts = h("dl", { class: "facts" });
    const lists = h("div", { class: "lists" });
    const updated = h("p", { class: "hint" });
    const message = h("p", { role: "status", class: "message" });
    const capacity = new ApiForm(
      "Change capacity",
      [{ name: "slots", label: "Seats", type: "number", value: String(conference.slots), attributes: { min: "1" } }],
      "Save capacity",
      async (values) => {
        const slots = Number(values.slots);
        conference = await this.app.api.patch<Conference>(path`/conference/${this.name}`, {
          slots: Number.isInteger(slots) && values.slots !== "" ? slots : values.slots,
        });
        message.textContent = `Capacity is now ${conference.slots}.`;
        await refreshSoon();
      },
    );
    const drawFacts = (): void =>
      replaceChildren(
        facts,
        h("dt", {}, "When"),
        h("dd", {}, span(conference.start, conference.end)),
        h("dt", {}, "Where"),
        h("dd", {}, conference.location),
        h("dt", {}, "Seats left"),
        h("dd", { class: "seats" }, `${conference.available_slots} of ${conference.slots}`),
        h("dt", {}, "In line"),
        h("dd", { class: "line" }, plural(conference.waitlist_length ?? 0, "person", "people")),
      );
    const refresh = async (): Promise<void> => {
      const [latest, bookings] = await Promise.all([
        this.app.api.get<Conference>(path`/conference/${this.name}`),
        this.bookings(),
      ]);
      if (scope.closed) return;
      conference = latest;
      drawFacts();
      replaceChildren(
        lists,
        this.table("Attendees", "CONFIRMED", bookings, message, refreshSoon),
        this.table("Seats offered", "CONFIRMATION_PENDING", bookings, message, refreshSoon),
        this.table("The line", "WAITLISTED", bookings, message, refreshSoon),
      );
      updated.textContent = `Updated at ${timeOfDay(new Date().toISOString())}; kept up to date while this page is open.`;
    };
    // A seat freed or added goes to the line within a second, by events: read now and once more shortly.
    const refreshSoon = async (): Promise<void> => {
      await refresh();
      window.setTimeout(() => void refresh().catch(() => undefined), FOLLOW_UP_MS);
    };
    replaceChildren(
      main,
      heading(this.title),
      facts,
      h("section", { "aria-labelledby": "capacity-heading" }, h("h2", { id: "capacity-heading" }, "Capacity"), capacity.element),
      message,
      updated,
      lists,
    );
    await refresh();
    scope.every(ORGANISER_REFRESH_MS, () => refresh().catch(() => undefined));
  }

  private async bookings(): Promise<Booking[]> {
    const found: Booking[] = [];
    let token = "";
    for (let page = 0; page < 100; page += 1) {
      const reply = await this.app.api.get<{ bookings: Booking[]; next_page_token: string }>(
        path`/conference/${this.name}/bookings` + `?page_size=100${token ? `&page_token=${encodeURIComponent(token)}` : ""}`,
      );
      found.push(...reply.bookings);
      token = reply.next_page_token;
      if (!token) break;
    }
    return found;
  }

  private table(
    caption: string,
    status: Booking["status"],
    bookings: Booking[],
    message: HTMLElement,
    refresh: () => Promise<void>,
  ): HTMLElement {
    const rows = bookings.filter((booking) => booking.status === status);
    const slug = status.toLowerCase();
    if (!rows.length) {
      return h("section", { class: `list ${slug}` }, h("h2", {}, caption), h("p", {}, "Nobody."));
    }
    return h(
      "section",
      { class: `list ${slug}` },
      h("h2", {}, `${caption} (${rows.length})`),
      h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            status === "WAITLISTED" ? h("th", { scope: "col" }, "Position") : null,
            h("th", { scope: "col" }, "User"),
            h("th", { scope: "col" }, "Booking"),
            status === "CONFIRMATION_PENDING" ? h("th", { scope: "col" }, "Deadline") : null,
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Action")),
          ),
        ),
        h(
          "tbody",
          {},
          rows.map((booking) => {
            const cancel = h(
              "button",
              { type: "button", class: "secondary", "aria-label": `Cancel booking ${booking.booking_id} of ${booking.user_id}` },
              "Cancel",
            );
            cancel.addEventListener("click", async () => {
              cancel.disabled = true;
              try {
                await this.app.api.post("/cancel", { booking_id: booking.booking_id });
                message.textContent = `Booking ${booking.booking_id} of ${booking.user_id} canceled.`;
                await refresh();
              } catch (error) {
                replaceChildren(message, this.app.problem(error));
                cancel.disabled = false;
              }
            });
            return h(
              "tr",
              { "data-booking-id": booking.booking_id },
              status === "WAITLISTED" ? h("td", {}, String(booking.waitlist_position ?? "")) : null,
              h("td", {}, booking.user_id),
              h("td", {}, `#${booking.booking_id}`),
              status === "CONFIRMATION_PENDING"
                ? h("td", {}, booking.confirmation_deadline ? timeOfDay(booking.confirmation_deadline) : "")
                : null,
              h("td", {}, cancel),
            );
          }),
        ),
      ),
    );
  }
}

// --- start ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const config = (await (await fetch("/config.json", { cache: "no-store" })).json()) as PageConfig;
  await new App(new Session(config)).start();
}

void main();
