// The public HTTP API, as the page calls it: JSON in and out, the bearer token from memory, errors as the
// API states them ({"error": {"code", "message"}}).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  /** The field a VALIDATION_ERROR names ("start: must be in the future" names start), if any. */
  get field(): string | null {
    if (this.code !== "VALIDATION_ERROR") return null;
    const match = /^([a-z_]+)(?:\[\d+\])?(?:\.[^:]*)?:/.exec(this.message);
    return match ? match[1] : null;
  }
}

export interface Conference {
  conference_id?: number;
  name: string;
  location: string;
  start: string;
  end: string;
  slots: number;
  topics: string[];
  available_slots?: number;
  waitlist_length?: number;
  matching_topics?: string[];
}

export type Status = "CONFIRMED" | "WAITLISTED" | "CONFIRMATION_PENDING" | "CANCELED";

export interface Booking {
  booking_id: number;
  status: Status;
  conference_name: string;
  user_id: string;
  can_confirm: boolean;
  confirmation_deadline: string | null;
  waitlist_position: number | null;
}

export interface BookingEvent {
  id: string;
  type: string;
  occurred_at: string;
  data: { booking: Booking; reason?: string };
}

export interface User {
  user_id: string;
  topics: string[];
}

export class Api {
  /** The current access token, or null when signed out; read at each call. */
  constructor(private readonly token: () => string | null) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const token = this.token();
    return { accept: "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(path, {
      method,
      headers: this.headers(body === undefined ? {} : { "content-type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    const text = await response.text();
    const parsed: unknown = text ? safeJson(text) : null;
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? response.statusText);
    }
    return parsed as T;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("POST", path, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("PATCH", path, body);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export function path(template: TemplateStringsArray, ...values: (string | number)[]): string {
  return template.reduce((out, part, i) => out + part + (i < values.length ? encodeURIComponent(String(values[i])) : ""), "");
}
