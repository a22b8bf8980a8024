// Files the browser saves: an API download (bearer token, never in the URL) or a Blob made here.
import { auth } from "./auth";
import { ApiProblem } from "./api/client";

/** Saves `blob` as `name` through a temporary object URL. */
export function saveFile(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** GETs an API path with the session's token and saves the answer as `name`. */
export async function downloadPath(path: string, name: string) {
  const token = await auth.token();
  const r = await fetch(path, { headers: { authorization: `Bearer ${token ?? ""}` } });
  if (!r.ok) throw new ApiProblem(r.status, r.statusText);
  saveFile(await r.blob(), name);
}
