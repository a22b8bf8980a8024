// A list read page by page over the API's `next_cursor`: the rows so far, whether a page is
// loading, the last failure, and the next page on demand.
import { useState } from "preact/hooks";

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export function usePaged<T>(fetchPage: (cursor: string | null) => Promise<Page<T>>) {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const load = (after: string | null) => {
    setLoading(true);
    setError(null);
    fetchPage(after)
      .then((page) => {
        setItems((old) => (after ? [...old, ...page.items] : page.items));
        setCursor(page.next_cursor ?? null);
      })
      .catch(setError)
      .finally(() => setLoading(false));
  };
  return {
    items,
    loading,
    error,
    setError,
    /** The first page again (after a filter change or to refresh). */
    reload: () => load(null),
    /** The next page, when there is one and none is loading. */
    more: cursor && !loading ? () => load(cursor) : null,
  };
}
