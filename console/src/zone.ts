// Times in the viewer's zone (the browser's, switchable), the zone named on screen.
import { signal } from "@preact/signals";

export const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
export const zone = signal<string>(browserZone);

export const ZONES = Array.from(
  new Set([browserZone, "UTC", "Europe/London", "Europe/Prague", "Europe/Moscow", "Asia/Shanghai", "Asia/Tokyo", "America/New_York", "America/Los_Angeles"]),
);

export function formatTime(iso: string, tz: string, locale: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale, {
    timeZone: tz,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(d);
}
