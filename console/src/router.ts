// A minimal router: the path picks the screen, the query string holds its filters.
import { signal } from "@preact/signals";

export const route = signal({ path: location.pathname, search: location.search });

export function navigate(to: string, replace = false) {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  const u = new URL(to, location.origin);
  route.value = { path: u.pathname, search: u.search };
  if (!replace) window.scrollTo(0, 0);
}

window.addEventListener("popstate", () => {
  route.value = { path: location.pathname, search: location.search };
});

/** Click handler for in-app links: keeps modifier-clicks (new tab) working. */
export function linkClick(e: MouseEvent) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.currentTarget as HTMLAnchorElement);
  e.preventDefault();
  navigate(a.getAttribute("href") ?? "/");
}
