// Records seen by the lists, by id: the API has no single-record route, so the detail screen
// shows a record the activity log has loaded in this tab.
import type { Record_ } from "./api/client";

export const seen = new Map<string, Record_>();
